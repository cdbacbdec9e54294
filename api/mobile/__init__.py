"""The grid worker's phone page ``/m/``: views, selectors, photo uploads and the phone's live feed filter."""
