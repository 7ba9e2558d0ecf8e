"""Text sources per language and the calibration sets built from them."""
