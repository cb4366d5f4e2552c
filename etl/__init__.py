"""File import and export: boundaries, surveys, targets, recruiters, incidents, reports."""
