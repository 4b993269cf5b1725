//! `--group-by`: besides the pooled graph, one graph per value of the group key (a column, or a
//! Hive-style `key=value` folder of the file's path), built from the same rows in the same pass.
//!
//! Each group has its own [`GraphBuilder`], so its state ids follow the reference node order of
//! its own rows, as if the group's rows had been logged alone; states are matched across groups
//! by name.

use super::table::{NULL, NameIds};
use crate::error::Result;
use crate::graph::{GraphBuilder, TransitionGraph};
use arrow::array::Array;

/// The groups seen so far and their transitions.
#[derive(Default)]
pub(super) struct Groups {
    /// Group names, as a name table (no transitions are added to it).
    names: GraphBuilder,
    ids: NameIds,
    graphs: Vec<GroupGraph>,
}

#[derive(Default)]
struct GroupGraph {
    builder: GraphBuilder,
    /// Id in `builder` of each pooled state id, [`NULL`] when not seen in this group yet.
    local: Vec<u32>,
}

impl GroupGraph {
    /// The group's id for the pooled state `state`, named in `states`.
    fn local_id(&mut self, state: u32, states: &GraphBuilder) -> u32 {
        let s = state as usize;
        if s >= self.local.len() {
            self.local.resize(s + 1, NULL);
        }
        if self.local[s] == NULL {
            self.local[s] = self.builder.intern(states.name(state));
        }
        self.local[s]
    }
}

impl Groups {
    /// Replaces `out` with the group id of each row of `array` ([`NULL`] for nulls).
    pub(super) fn map(&mut self, array: &dyn Array, out: &mut Vec<u32>) {
        self.ids.map(array, &mut self.names, out);
    }

    /// The id of the group named `name`.
    pub(super) fn id(&mut self, name: &str) -> u32 {
        self.names.intern(name)
    }

    /// Adds `count` transitions `source → target` (pooled ids, named in `states`) read at global
    /// row `row` to group `group`.
    pub(super) fn add(
        &mut self,
        group: u32,
        source: u32,
        target: u32,
        count: u64,
        row: u64,
        states: &GraphBuilder,
    ) -> Result<()> {
        let g = group as usize;
        if g >= self.graphs.len() {
            self.graphs.resize_with(g + 1, GroupGraph::default);
        }
        let graph = &mut self.graphs[g];
        let (s, t) = (
            graph.local_id(source, states),
            graph.local_id(target, states),
        );
        graph.builder.add(s, t, count, row)
    }

    /// Adds what `later` read (rows after every row read into `self`), matching groups and
    /// states by name.
    pub(super) fn absorb(&mut self, later: Groups) -> Result<()> {
        for (g, graph) in later.graphs.into_iter().enumerate() {
            let id = self.id(later.names.name(g as u32)) as usize;
            if id >= self.graphs.len() {
                self.graphs.resize_with(id + 1, GroupGraph::default);
            }
            self.graphs[id].builder.absorb(graph.builder)?;
        }
        Ok(())
    }

    /// Every group that has rows, with its graph, sorted by name.
    pub(super) fn finish(self) -> Vec<(String, TransitionGraph)> {
        let mut groups: Vec<(String, TransitionGraph)> = self
            .graphs
            .into_iter()
            .enumerate()
            .filter(|(_, graph)| graph.builder.n_states() > 0)
            .map(|(g, graph)| (self.names.name(g as u32).to_owned(), graph.builder.finish()))
            .collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        groups
    }
}
