"""DB adapters: how raftlab installs, starts, faults and talks to a system under test.

``raftnode``, ``etcd``, ``nats`` and ``redis`` are built in (``tester.db.BUILTIN``);
``tester.dbs.example`` is the adapter docs/adapter-tutorial.md builds, to copy for a system of
your own. ``daemon`` and ``faketime`` are the pieces every adapter uses.
"""
