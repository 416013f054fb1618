"""Role management: the pure policy, the etcd key layout, and the member runtime."""
