"""The spatial core, on which every other domain builds.

Grids, streets, buildings, cameras, parking, grid workers and service points (``models``); which grid
holds a point (``selectors``); writes of area features (``services``); grid topology (``topology``);
the import and export of feature layers (``io``).
"""
