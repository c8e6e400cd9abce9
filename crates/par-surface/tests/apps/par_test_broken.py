"""An entry module that fails while being imported."""

raise RuntimeError("boom while importing par_test_broken")
