//! End-to-end tests live in `tests/tests/`: each starts the servers in-process on 127.0.0.1 and drives them with real peers.
