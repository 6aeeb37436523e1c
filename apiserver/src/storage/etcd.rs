//! The etcd backend (`etcd-client`), for cluster mode.
