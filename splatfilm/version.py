"""The package version, in one place (sidecars and manifests record it)."""

__version__ = "0.1.0"
