//! Test-bed smoke tests (written with the test bed).
