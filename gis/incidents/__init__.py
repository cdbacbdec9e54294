"""Incidents: their models, the services that write them (located in a grid) and the selectors the screen reads.

The cases that grow from incidents (dispatch, time limits, escalation) belong here too.
"""
