//! ARC data plane: sources, destinations and pipelines that move artifacts digest-exactly.
