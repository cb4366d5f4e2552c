"""Map layers: coverage, recruiter areas, hot spots, classification, folium pages, tiles."""
