"""Mock backend: devices that read and drive the plant simulator, with fault injection."""
