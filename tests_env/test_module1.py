"""Module 1: Kind cluster `workshop-dra` with in-cluster MPS (../shared/seeds/module1-kind-setup.md)."""

import pytest

pytestmark = pytest.mark.module1
