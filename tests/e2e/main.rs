//! The real `trailkey` binary end to end, one test binary: without AWS
//! (`cli`), and against a moto server per test, seeded and read back by
//! boto3, through the real-AWS layer of the test kit (`trailkey_testkit`).
//! Most tests wait on moto and on the binary rather than on the CPU, so
//! `make test` runs them on more threads than there are cores
//! (docs/testing.md).

mod cli;
mod control_tower;
mod delegated;
mod delivery;
mod dist;
mod drift;
mod iam;
mod init;
mod lambda;
mod landing_zone;
mod real_aws;
mod saved;
mod scenarios;
