//! Agent configuration files (HCL and JSON) parsed into `engine::config::AgentConfig`.
