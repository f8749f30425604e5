//! The integration tests: one binary (the AWS SDK and DataFusion are linked once), each module
//! driving the real server binary through a real MCP client against the emulators on loopback.
//! `calendar` holds the tests that depend on the date: `tools/test.sh` runs them again with the
//! clock pinned to hard dates (BEDROCK_COST_MCP_NOW).

mod common;

mod accounts;
mod anomalies;
mod answers;
mod attack;
mod budget;
mod calendar;
mod chart;
mod cli;
mod client_configs;
mod cur_rollups;
mod demo;
mod dispatch_props;
mod doctor;
mod faults;
mod http_auth;
mod http_transport;
mod input_errors;
mod layers;
mod live;
mod principals;
mod prompts_resources;
mod registry;
mod setup;
mod spend_athena;
mod spend_cost_explorer;
mod spend_cur;
mod tools_list;
