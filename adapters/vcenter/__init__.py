"""vCenter drivers: pyvmomi (real vSphere API) and a simulated inventory for the embedded default."""
