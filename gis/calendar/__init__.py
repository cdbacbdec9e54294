"""The working calendar for case time limits: working hours on working days, China's holidays and 调休, overrides."""
