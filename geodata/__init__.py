"""Database, administrative units, boundary versions, CRS and spatial helpers.

``geodata`` is the bottom layer of Labour Atlas: every other package may import
it, and it imports none of them.
"""
