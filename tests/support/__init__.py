"""Helpers used only by the tests: small seeded CARs and synthetic model frames."""
