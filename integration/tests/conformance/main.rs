//! hull's runtime-spec conformance suite: one case per requirement, grouped by the spec's
//! sections, each checked from inside the container or through the CLI, never from hull's own
//! reports alone. Prints a TAP line per case and `N passed, M failed, K skipped`; exits 1 on any
//! failure. `REFERENCE=runc` runs the same cases against runc to prove them.
//!
//! `cargo test -p integration --test conformance [-- FILTER]` runs the cases whose
//! `section: name` contains FILTER.

mod config;
mod invalid;
mod lifecycle;
mod spec;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

/// Ends a case as skipped, printing why.
pub fn skip(reason: &str) -> ! {
    panic::panic_any(Skipped(reason.to_string()))
}

struct Skipped(String);

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

struct Case {
    name: String,
    run: Box<dyn Fn()>,
}

fn case(section: &str, name: &str, f: fn()) -> Case {
    Case {
        name: format!("{section}: {name}"),
        run: Box::new(f),
    }
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        case(
            "lifecycle",
            "create, start, state, kill, delete",
            lifecycle::create_start_state_delete,
        ),
        case(
            "lifecycle",
            "run returns the exit status",
            lifecycle::run_returns_the_exit_status,
        ),
        case(
            "lifecycle",
            "run removes the container and its cgroup",
            lifecycle::run_removes_the_container_and_its_cgroup,
        ),
        case(
            "lifecycle",
            "config changes after create have no effect",
            lifecycle::config_changes_after_create_have_no_effect,
        ),
        case(
            "state",
            "fields and annotations",
            spec::state_fields_and_annotations,
        ),
        case("state", "list formats", lifecycle::list_formats),
        case(
            "operations: kill",
            "by name and number",
            lifecycle::run_detached_then_kill_by_name_and_number,
        ),
        case(
            "operations: kill",
            "--all signals every process",
            lifecycle::kill_all_signals_every_process,
        ),
        case(
            "operations: kill",
            "created stops; stopped refuses",
            spec::kill_of_created_stops_it_and_kill_of_stopped_fails,
        ),
        case(
            "operations: delete",
            "of a created container",
            lifecycle::delete_of_created_container_kills_it,
        ),
        case(
            "operations: delete",
            "--force of a missing container",
            lifecycle::delete_force_of_missing_container_succeeds,
        ),
        case(
            "operations: create",
            "id rules and duplicates",
            lifecycle::id_rules_and_duplicates,
        ),
        case(
            "operations: create",
            "pid file holds the init pid",
            lifecycle::pid_file_holds_the_init_pid,
        ),
        case(
            "operations: create",
            "preserve-fds passes exactly those",
            lifecycle::preserve_fds_passes_exactly_those,
        ),
        case(
            "operations: create",
            "socket activation fds",
            config::socket_activation_fds_pass_with_listen_env,
        ),
        case(
            "runtime",
            "spec writes a runnable default config",
            lifecycle::spec_writes_a_runnable_config_once,
        ),
        case(
            "runtime",
            "json log: one line per failure",
            lifecycle::json_log_gets_exactly_one_line_per_failure,
        ),
        case(
            "runtime",
            "version names runtime and spec",
            lifecycle::version_names_the_runtime_and_spec,
        ),
        case(
            "config: root",
            "readonly root and paths",
            config::readonly_root_and_paths,
        ),
        case(
            "config: root",
            "no-pivot moves the root",
            config::no_pivot_moves_the_root,
        ),
        case(
            "config: mounts",
            "tmpfs, bind and flags",
            config::mounts_tmpfs_bind_and_flags,
        ),
        case(
            "config: mounts",
            "idmapped bind mounts, with and without a user namespace",
            config::idmapped_bind_mounts,
        ),
        case(
            "config: mounts",
            "a read-only /dev still gets its mounts and devices",
            config::read_only_dev_still_gets_its_mounts_and_devices,
        ),
        case(
            "config: mounts",
            "bind flags over a source with locked flags",
            config::bind_flags_over_a_source_with_locked_flags,
        ),
        case(
            "config: mounts",
            "bind mounts through dangling symlinks land inside",
            config::bind_mounts_through_dangling_symlinks_land_inside,
        ),
        case(
            "config: mounts",
            "tmpcopyup copies the covered directory",
            config::tmpcopyup_copies_the_covered_directory,
        ),
        case(
            "config: mounts",
            "bind sources from earlier mounts and out of reach",
            config::bind_sources_from_earlier_mounts_and_out_of_reach,
        ),
        case(
            "config: mounts",
            "relative destinations are taken from /",
            config::relative_mount_destinations_are_taken_from_root,
        ),
        case(
            "config: mounts",
            "/proc may be a bind of a whole procfs",
            config::proc_may_be_a_bind_of_a_whole_procfs,
        ),
        case(
            "config: mounts",
            "tmpfs takes the mode of the directory it covers",
            config::tmpfs_takes_the_mode_of_the_directory_it_covers,
        ),
        case(
            "config: mounts",
            "symlinked destination stays inside",
            config::mount_destination_symlink_stays_inside_the_rootfs,
        ),
        case(
            "config: mounts",
            "propagation options",
            config::mount_propagation_options,
        ),
        case(
            "config: mounts",
            "cgroup mount is the container's own, read-only",
            config::cgroup_mount_shows_the_containers_own_cgroups_read_only,
        ),
        case(
            "config: process",
            "args and env",
            spec::process_args_and_env_reach_the_process,
        ),
        case(
            "config: process",
            "the process leads its own session",
            spec::the_process_leads_its_own_session,
        ),
        case(
            "config: process",
            "stdio on the host's /dev/null is the container's own",
            spec::stdio_on_the_hosts_dev_null_is_the_containers_own,
        ),
        case(
            "config: process",
            "env, cwd, user, groups, umask, rlimits, oom",
            config::process_env_cwd_user_umask_rlimits_oom,
        ),
        case(
            "config: process",
            "rlimit soft above hard fails",
            spec::rlimit_soft_above_hard_fails_the_create,
        ),
        case(
            "config: process",
            "oomScoreAdj",
            spec::oom_score_adj_is_applied,
        ),
        case(
            "config: process",
            "capabilities in all sets",
            config::capabilities_in_all_sets,
        ),
        case(
            "config-linux",
            "memory policy: applied, and checked in runc's words",
            config::memory_policy_is_applied_and_checked,
        ),
        case(
            "config",
            "process: CAP_DAC_OVERRIDE runs a program without the exec bit",
            config::cap_dac_override_runs_a_program_without_the_exec_bit,
        ),
        case(
            "config",
            "process: scheduler is applied",
            config::scheduler_is_applied,
        ),
        case(
            "config",
            "process: ioPriority and linux.personality are applied",
            config::io_priority_and_personality_are_applied,
        ),
        case(
            "config",
            "process: duplicate env names keep the last value once",
            config::duplicate_env_names_keep_the_last_value_once,
        ),
        case(
            "config",
            "process: unknown capabilities are ignored with a warning",
            config::unknown_capabilities_are_ignored_with_a_warning,
        ),
        case(
            "config: process",
            "noNewPrivileges",
            spec::no_new_privileges_is_set_only_when_asked,
        ),
        case(
            "config: hostname",
            "hostname and domainname",
            config::hostname_and_domainname,
        ),
        case(
            "config: hooks",
            "every kind, in order, state on stdin",
            config::hooks_run_in_order_with_state_on_stdin,
        ),
        case(
            "config: hooks",
            "failing or slow create hooks abort",
            config::failing_or_slow_create_hooks_abort_and_leave_nothing,
        ),
        case(
            "config: hooks",
            "init's hooks get the process env, createContainer the rootfs as cwd",
            config::init_hooks_get_the_process_env_and_the_rootfs_as_cwd,
        ),
        case(
            "config: hooks",
            "startContainer failure fails start",
            spec::start_container_hook_failure_fails_start,
        ),
        case(
            "config: hooks",
            "poststart failure fails run and start, and stops the container",
            spec::poststart_failure_fails_and_stops_the_container,
        ),
        case(
            "config: hooks",
            "poststop failure only warns",
            config::poststop_failure_only_warns,
        ),
        case(
            "config-linux: namespaces",
            "new or joined by path",
            config::namespaces_are_new_or_joined_by_path,
        ),
        case(
            "config-linux: namespaces",
            "lo is up in a new network namespace, untouched in a joined one",
            config::loopback_is_up_only_in_a_new_network_namespace,
        ),
        case(
            "config-linux: namespaces",
            "pid namespace: process is pid 1",
            config::pid_namespace_makes_the_process_pid_1,
        ),
        case(
            "config-linux: namespaces",
            "time namespace with offsets",
            config::time_namespace_with_offsets,
        ),
        case(
            "config-linux: namespaces",
            "joining another container's user namespace",
            config::joining_another_containers_user_namespace,
        ),
        case(
            "config-linux: namespaces",
            "an empty path means a new namespace",
            config::an_empty_namespace_path_means_a_new_namespace,
        ),
        case(
            "config-linux: namespaces",
            "no mount namespace: mounts under the rootfs, the host's propagation untouched",
            config::no_mount_namespace_mounts_under_the_rootfs_and_leaves_the_host_alone,
        ),
        case(
            "config-linux: user namespace mappings",
            "uid and gid maps",
            config::user_namespace_maps_ids,
        ),
        case(
            "config-linux: devices",
            "default and configured devices",
            config::default_and_configured_devices,
        ),
        case(
            "config-linux: sysctl",
            "in the network namespace",
            config::sysctl_in_the_network_namespace,
        ),
        case(
            "config-linux: rootfs propagation",
            "shared does not break pivot",
            config::rootfs_propagation_shared_does_not_break_pivot,
        ),
        case(
            "config-linux: masked paths",
            "files and directories hidden",
            spec::masked_paths_hide_files_and_directories,
        ),
        case(
            "config-linux: masked paths",
            "a path listed twice once; directories share a tmpfs",
            spec::masked_paths_are_deduplicated_and_directories_share_a_tmpfs,
        ),
        case(
            "config-linux: readonly paths",
            "writes refused",
            spec::readonly_paths_refuse_writes,
        ),
        case(
            "config-linux: cgroups",
            "absolute and relative paths",
            spec::cgroups_path_absolute_and_relative,
        ),
        case(
            "config-linux: cgroups",
            "pids limit holds inside",
            spec::cgroup_limits_hold_inside,
        ),
        case(
            "config-linux: seccomp",
            "errno rule applies",
            spec::seccomp_errno_rule_applies,
        ),
        case(
            "config-linux: seccomp",
            "startContainer hooks run under the profile",
            spec::start_container_hooks_run_under_the_seccomp_profile,
        ),
        case(
            "config-linux: seccomp",
            "filter flags are reported as runc does",
            spec::seccomp_flags_are_reported_as_runc_does,
        ),
        case(
            "bad input",
            "missing bundle directory",
            invalid::missing_bundle_directory,
        ),
    ];
    for (name, run) in invalid::cases() {
        v.push(Case {
            name: format!("bad input: {name}"),
            run,
        });
    }
    v
}

fn run(case: &dyn Fn()) -> Outcome {
    match panic::catch_unwind(AssertUnwindSafe(case)) {
        Ok(()) => Outcome::Pass,
        Err(payload) => match payload.downcast::<Skipped>() {
            Ok(s) => Outcome::Skip(s.0),
            Err(payload) => Outcome::Fail(
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            ),
        },
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    // Failures are reported once, in the TAP diagnostics, not by the default hook as well.
    static LOCATION: Mutex<String> = Mutex::new(String::new());
    panic::set_hook(Box::new(|info| {
        if let Some(l) = info.location() {
            *LOCATION.lock().unwrap() = l.to_string();
        }
    }));
    let reference = std::env::var("REFERENCE").ok().filter(|r| !r.is_empty());
    let runtime = reference.clone().unwrap_or_else(|| "hull".into());
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    println!("TAP version 13");
    println!("# runtime-spec conformance of {runtime}");
    println!("1..{}", cases.len());
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (i, c) in cases.iter().enumerate() {
        let n = i + 1;
        let name = &c.name;
        match run(c.run.as_ref()) {
            Outcome::Pass => {
                passed += 1;
                println!("ok {n} - {name}");
            }
            Outcome::Skip(why) => {
                skipped += 1;
                integration::log_skip(&format!("conformance: {name}"), &why);
                println!("ok {n} - {name} # SKIP {why}");
            }
            Outcome::Fail(msg) => {
                failed += 1;
                println!("not ok {n} - {name}");
                println!("  # at {}", LOCATION.lock().unwrap());
                for line in msg.lines() {
                    println!("  # {line}");
                }
            }
        }
    }
    println!("# {runtime}: {passed} passed, {failed} failed, {skipped} skipped");
    std::process::exit(i32::from(failed > 0));
}
