"""The wall: named layouts (grids of tiles) and tours (timed pages), independent of video."""
