//! Writing the admin kubeconfig for the embedded server.
