//! A seeded xorshift64 generator for the property tests: reproducible random cases without a
//! dependency. A failing case names its number; the seed makes it the same on every run.

use std::collections::BTreeSet;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn coin(&mut self) -> bool {
        self.below(2) == 0
    }

    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// A random subset of `from`, in order.
    pub fn some<'a>(&mut self, from: &[&'a str]) -> Vec<&'a str> {
        from.iter().copied().filter(|_| self.coin()).collect()
    }

    pub fn subset(&mut self, from: &[&str]) -> BTreeSet<String> {
        self.some(from).into_iter().map(str::to_string).collect()
    }
}
