"""Field survey capture: form definitions, validation, ingest, quarantine, OpenRosa."""
