//! `detbal::simulate`: determinism, recovery of the planted truth from the written log, groups,
//! and parameter validation.

use crate::support::{column, read_parquet, simulated};
use arrow::array::{Array, AsArray};
use arrow::datatypes::UInt64Type;
use detbal::error::Error;
use detbal::simulate::{SimMode, SimParams, Truth, read_truth, simulate};
use detbal::stats::pearson;
use rustc_hash::FxHashMap;
use std::path::Path;

/// A written log, state names parsed back to indices (`s17` → 17, `g2` → 2).
struct Log {
    run: Vec<u64>,
    source: Vec<u32>,
    target: Vec<u32>,
    group: Option<Vec<u32>>,
}

fn index(name: &str, prefix: char) -> u32 {
    name.strip_prefix(prefix)
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("bad name {name}"))
}

fn read_log(path: &Path) -> Log {
    let table = read_parquet(path);
    let names = |col: &str, prefix| {
        table.column_by_name(col).map(|c| {
            let a = c.as_string::<i32>();
            assert_eq!(a.null_count(), 0);
            a.iter()
                .map(|s| index(s.unwrap(), prefix))
                .collect::<Vec<_>>()
        })
    };
    Log {
        run: column(&table, "run")
            .as_primitive::<UInt64Type>()
            .values()
            .to_vec(),
        source: names("source", 's').unwrap(),
        target: names("target", 's').unwrap(),
        group: names("group", 'g'),
    }
}

fn params(mode: SimMode, rows: u64, states: u32) -> SimParams {
    SimParams {
        rows,
        states,
        seed: 11,
        ..SimParams::new(mode)
    }
}

/// Transition counts `n(f→g)` (f ≠ g) and `N(f)` (self-transitions included).
fn counts(log: &Log, n: usize) -> (FxHashMap<(u32, u32), f64>, Vec<f64>) {
    let mut pair = FxHashMap::default();
    let mut out = vec![0.0; n];
    for (&f, &g) in log.source.iter().zip(&log.target) {
        out[f as usize] += 1.0;
        if f != g {
            *pair.entry((f, g)).or_insert(0.0) += 1.0;
        }
    }
    (pair, out)
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    for p in [
        params(SimMode::Driven, 30_000, 50),
        SimParams {
            groups: 2,
            ..params(SimMode::LlmLike, 300_000, 5_000)
        },
    ] {
        let (a, b) = (simulated(&p), simulated(&p));
        let c = simulated(&SimParams {
            seed: p.seed + 1,
            ..p.clone()
        });
        let bytes = |path: &Path| std::fs::read(path).unwrap();
        assert!(
            bytes(&a.log) == bytes(&b.log),
            "{:?}: parquet differs for the same seed",
            p.mode
        );
        assert!(
            bytes(&a.truth_file) == bytes(&b.truth_file),
            "{:?}: truth differs for the same seed",
            p.mode
        );
        assert!(
            bytes(&a.log) != bytes(&c.log),
            "{:?}: parquet equal for different seeds",
            p.mode
        );
        assert!(
            bytes(&a.truth_file) != bytes(&c.truth_file),
            "{:?}: truth equal for different seeds",
            p.mode
        );
    }
}

#[test]
fn log_is_well_formed_and_matches_summary_and_truth() {
    let p = params(SimMode::LlmLike, 40_000, 2_000);
    let sim = simulated(&p);
    let (log, truth) = (read_log(&sim.log), sim.truth());
    assert_eq!(log.run.len() as u64, p.rows);
    assert!(log.group.is_none());
    // Runs are numbered 0.. in order and each step continues from the previous target.
    assert_eq!(log.run[0], 0);
    for i in 1..log.run.len() {
        let new_run = log.run[i] != log.run[i - 1];
        assert!(if new_run {
            log.run[i] == log.run[i - 1] + 1
        } else {
            log.source[i] == log.target[i - 1]
        });
    }
    let runs = log.run.last().unwrap() + 1;
    let self_rows = log
        .source
        .iter()
        .zip(&log.target)
        .filter(|(f, g)| f == g)
        .count() as u64;
    let mut visits = vec![0u64; p.states as usize];
    log.source.iter().for_each(|&f| visits[f as usize] += 1);
    let ends =
        (0..log.run.len()).filter(|&i| i + 1 == log.run.len() || log.run[i + 1] != log.run[i]);
    ends.for_each(|i| visits[log.target[i] as usize] += 1);
    let seen = visits.iter().filter(|&&v| v > 0).count() as u64;

    let s = &sim.summary;
    assert_eq!(
        (s.rows, s.runs, s.self_rows, s.states_seen),
        (p.rows, runs, self_rows, seen)
    );
    assert_eq!(
        (truth.stats.rows, truth.stats.runs, truth.stats.self_rows),
        (p.rows, runs, self_rows)
    );
    assert_eq!(truth.stats.states_seen, seen);
    assert_eq!(
        truth.stats.states_seen_once,
        visits.iter().filter(|&&v| v == 1).count() as u64
    );
    assert_eq!(truth.stats.max_state_visits, *visits.iter().max().unwrap());
    assert_eq!(
        (truth.mode, truth.seed, truth.n_states),
        (SimMode::LlmLike, p.seed, 2_000)
    );
    assert_eq!(truth.states.len(), 2_000);
    assert_eq!(truth.states[17], "s17");
    // Mean run length ≈ run_len (geometric: sd/mean ≈ 1, ~2,000 runs).
    let mean_len = p.rows as f64 / runs as f64;
    assert!(
        (mean_len / p.run_len - 1.0).abs() < 0.1,
        "mean run length {mean_len}"
    );
}

#[test]
fn reversible_log_ratios_track_the_planted_potential() {
    let p = params(SimMode::Reversible, 200_000, 100);
    let sim = simulated(&p);
    let (log, truth) = (read_log(&sim.log), sim.truth());
    assert!(truth.drive.triangles.is_empty() && truth.drive.edges.is_empty());
    let (n, out) = counts(&log, 100);
    let v = &truth.potential;
    let (mut x, mut y) = (vec![], vec![]);
    for (&(f, g), &nfg) in &n {
        let ngf = n.get(&(g, f)).copied().unwrap_or(0.0);
        if f < g && nfg >= 20.0 && ngf >= 20.0 {
            x.push((nfg * out[g as usize] / (ngf * out[f as usize])).ln());
            y.push(v[f as usize] - v[g as usize]);
        }
    }
    let r = pearson(&x, &y).unwrap();
    assert!(x.len() > 100, "{} well-visited pairs", x.len());
    assert!(r > 0.95, "r = {r} on {} pairs", x.len());
}

#[test]
fn driven_triangles_show_the_planted_affinity() {
    let p = params(SimMode::Driven, 200_000, 100);
    let sim = simulated(&p);
    let (log, truth) = (read_log(&sim.log), sim.truth());
    assert_eq!(truth.drive.triangles.len(), 20);
    assert_eq!(truth.drive.edges.len(), 60);
    let (n, _) = counts(&log, 100);
    let id = |s: &String| index(s, 's');
    let mut affinities = vec![];
    for t in &truth.drive.triangles {
        assert_eq!(t.affinity, 3.0 * p.drive);
        let [a, b, c] = [id(&t.cycle[0]), id(&t.cycle[1]), id(&t.cycle[2])];
        let ratios: Option<f64> = [(a, b), (b, c), (c, a)]
            .into_iter()
            .map(|(f, g)| Some((n.get(&(f, g))? / n.get(&(g, f))?).ln()))
            .sum();
        affinities.extend(ratios);
    }
    assert!(
        affinities.len() >= 15,
        "only {} triangles observed both ways",
        affinities.len()
    );
    let mean = affinities.iter().sum::<f64>() / affinities.len() as f64;
    assert!(
        (mean / (3.0 * p.drive) - 1.0).abs() < 0.15,
        "mean affinity {mean}, planted {}",
        3.0 * p.drive
    );
}

#[test]
fn llm_like_has_a_long_tail_and_the_deepest_attractor_is_most_visited() {
    let p = params(SimMode::LlmLike, 200_000, 10_000);
    let sim = simulated(&p);
    let (log, truth) = (read_log(&sim.log), sim.truth());
    let mut visits = vec![0u64; 10_000];
    log.source.iter().for_each(|&f| visits[f as usize] += 1);
    let once = visits.iter().filter(|&&v| v == 1).count() as f64;
    let seen = visits.iter().filter(|&&v| v > 0).count() as f64;
    assert!(once / seen > 0.3, "only {once} of {seen} states seen once");
    assert!(truth.stats.frac_seen_once_of_seen > 0.3);

    let top = (0..10_000).max_by_key(|&f| visits[f]).unwrap();
    let deepest = truth
        .attractors
        .iter()
        .map(|a| index(a, 's') as usize)
        .min_by(|&a, &b| truth.potential[a].total_cmp(&truth.potential[b]))
        .unwrap();
    assert_eq!(truth.attractors.len(), 5);
    assert_eq!(
        top, deepest,
        "most visited s{top}, deepest attractor s{deepest}"
    );
    // Long self-transition runs at the attractor.
    let stays = log
        .source
        .iter()
        .zip(&log.target)
        .filter(|&(&f, &g)| f == g && f as usize == top)
        .count();
    assert!(
        stays as f64 > 0.5 * visits[top] as f64,
        "{stays} of {} visits stay",
        visits[top]
    );
}

#[test]
fn groups_write_a_group_column_and_share_a_potential_on_request() {
    let shared = SimParams {
        groups: 3,
        shared_potential: true,
        ..params(SimMode::Reversible, 10_000, 30)
    };
    let sim = simulated(&shared);
    let (log, truth) = (read_log(&sim.log), sim.truth());
    let group = log.group.expect("group column");
    for g in 0..3u32 {
        let rows = group.iter().filter(|&&x| x == g).count();
        assert!(rows == 3_333 || rows == 3_334, "group g{g} has {rows} rows");
    }
    // Runs do not cross groups.
    assert!((1..group.len()).all(|i| group[i] == group[i - 1] || log.run[i] != log.run[i - 1]));
    assert_eq!(truth.groups, ["g0", "g1", "g2"]);
    assert_eq!(truth.group_potentials.len(), 3);
    assert!(truth.group_potentials.iter().all(|v| *v == truth.potential));

    let own = simulated(&SimParams {
        shared_potential: false,
        ..shared
    });
    let truth: Truth = own.truth();
    assert_eq!(truth.group_potentials[0], truth.potential);
    assert_ne!(truth.group_potentials[0], truth.group_potentials[1]);
    assert_ne!(truth.group_potentials[1], truth.group_potentials[2]);
}

#[test]
fn defaults_validate_and_bad_parameters_are_rejected() {
    for mode in [SimMode::Reversible, SimMode::Driven, SimMode::LlmLike] {
        SimParams::new(mode).validate().unwrap();
    }
    let rev = SimParams::new(SimMode::Reversible);
    let driven = SimParams::new(SimMode::Driven);
    let bad = [
        (
            "rows",
            SimParams {
                rows: 0,
                ..rev.clone()
            },
        ),
        (
            "states",
            SimParams {
                states: 2,
                ..rev.clone()
            },
        ),
        (
            "run_len",
            SimParams {
                run_len: 0.5,
                ..rev.clone()
            },
        ),
        (
            "vscale",
            SimParams {
                vscale: f64::NAN,
                ..rev.clone()
            },
        ),
        (
            "mean_degree",
            SimParams {
                mean_degree: 200.0,
                ..rev.clone()
            },
        ),
        (
            "drive_fraction",
            SimParams {
                drive_fraction: 1.5,
                ..driven.clone()
            },
        ),
        (
            "driven mode",
            SimParams {
                drive: 0.0,
                ..driven.clone()
            },
        ),
        (
            "only used in driven mode",
            SimParams {
                mode: SimMode::Reversible,
                ..driven.clone()
            },
        ),
        (
            "attractors",
            SimParams {
                attractors: 201,
                ..rev.clone()
            },
        ),
        (
            "pareto",
            SimParams {
                pareto: -1.0,
                ..rev.clone()
            },
        ),
        (
            "groups",
            SimParams {
                groups: 0,
                ..rev.clone()
            },
        ),
    ];
    for (what, p) in bad {
        match p.validate() {
            Err(Error::Settings { message, .. }) => assert!(message.contains(what), "{message}"),
            other => panic!("{what}: expected a settings error, got {other:?}"),
        }
    }
    // simulate validates before it writes anything.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.parquet");
    let p = SimParams { rows: 0, ..rev };
    assert!(matches!(
        simulate(&p, &log, &dir.path().join("t.json")),
        Err(Error::Settings { .. })
    ));
    assert!(!log.exists());
}

#[test]
fn unwritable_output_and_bad_truth_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = params(SimMode::Reversible, 100, 20);
    let missing = dir.path().join("no/such/dir/log.parquet");
    match simulate(&p, &missing, &dir.path().join("t.json")) {
        Err(Error::Write { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected a write error, got {other:?}"),
    }
    let not_truth = dir.path().join("x.json");
    std::fs::write(&not_truth, "{\"format\": 1}").unwrap();
    assert!(matches!(
        read_truth(&not_truth),
        Err(Error::BadInput { .. })
    ));
    assert!(matches!(
        read_truth(&dir.path().join("absent.json")),
        Err(Error::Read { .. })
    ));
}
