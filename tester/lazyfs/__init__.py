"""lazyfs: a FUSE filesystem that loses unsynced writes on command (docs/testing.md).

``durable`` is the durability model (shared with the simulator's disk, and compiled with it by
``raftlab compile``), ``fs`` the filesystem, ``node`` the program a node runs, ``deploy`` the
control side over SSH.
"""

try:
    from raftnode.accel import guard as _guard
except ImportError:  # on a node, inside the lazyfs zipapp: nothing is compiled there
    pass
else:
    _guard()  # a stale compiled durability model is never imported (raftnode/accel.py)
