"""Collected before anything else, by the tests and by the doctests of the packages alike.

The settings refuse to run without a strong server secret, and modules such
as ``api.main`` build the app when imported: give the test run its own.
"""

import os

from tests.helpers import TEST_SECRET

os.environ.setdefault("LABOUR_ATLAS_SECRET_KEY", TEST_SECRET)
