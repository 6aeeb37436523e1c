//! ARC controllers: Order and ArtifactWorkflow reconcilers and their executors.
