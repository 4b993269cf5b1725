//! detbal: detailed balance and potentials of LLM-driven agents, from transition logs.
pub mod backend;
pub mod error;
pub mod fit;
pub mod graph;
pub mod io;
pub mod simulate;
pub mod stats;
