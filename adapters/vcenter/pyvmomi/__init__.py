"""The pyvmomi driver: the VCenterDriver port over the real vSphere API."""
