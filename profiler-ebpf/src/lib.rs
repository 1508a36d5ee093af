//! Empty library target: lets `profiler` list this crate as a build-dependency so cargo
//! rebuilds the embedded object when a kernel program changes.
#![no_std]
