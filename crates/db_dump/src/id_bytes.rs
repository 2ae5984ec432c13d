//! Byte strings by id in two allocations (an index and one text buffer):
//! at 10M users, hundreds of thousands of boxed strings cost several times
//! their bytes. Used for team founders' names and host_optout's records.

#[derive(Default)]
pub(crate) struct IdBytes {
    /// (id, start, end) into `text`.
    index: Vec<(i64, u32, u32)>,
    text: Vec<u8>,
}

impl IdBytes {
    pub(crate) fn push(&mut self, id: i64, bytes: &[u8]) {
        let start = self.text.len() as u32;
        self.text.extend_from_slice(bytes);
        self.index.push((id, start, self.text.len() as u32));
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// By id, whatever order they came in; then `get` works.
    pub(crate) fn sort(&mut self) {
        self.index.sort_unstable_by_key(|r| r.0);
        self.index.shrink_to_fit();
    }

    /// The bytes of `id` (after `sort`).
    pub(crate) fn get(&self, id: i64) -> Option<&[u8]> {
        let i = self.index.binary_search_by_key(&id, |r| r.0).ok()?;
        Some(self.bytes(i))
    }

    fn bytes(&self, i: usize) -> &[u8] {
        let (_, start, end) = self.index[i];
        &self.text[start as usize..end as usize]
    }

    /// Entries `from..to` as a batch for the writers.
    pub(crate) fn batch(&self, from: usize, to: usize) -> Vec<(i64, Vec<u8>)> {
        (from..to)
            .map(|i| (self.index[i].0, self.bytes(i).to_vec()))
            .collect()
    }
}
