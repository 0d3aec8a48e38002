"""The ``dualwrite`` command: thin click commands over the library."""
