"""DB adapters: how raftlab installs, starts, faults and talks to a system under test.

``raftnode`` (``tester.dbs.raftnode:RaftnodeDB``) and ``etcd`` (``tester.dbs.etcd:EtcdDB``) are
built in; ``tester.dbs.example`` is a minimal adapter to copy for a system of your own.
"""
