//! SN37 generated tasks and score combination.
