//! Known answers: the paper's published check value and the reference code's output on the
//! parity fixture (tests/data/paper_parity), reproduced by `--paper`.

use crate::support::{analysis_of, fixture};
use detbal::analyze::AnalyzeSettings;
use detbal::backend::cpu::CpuBackend;
use detbal::fit::{Exposure, FitSettings, Identifiability, fit};
use detbal::graph::GraphBuilder;
use detbal::pipeline::analyze;

/// docs/METHOD.md §2.1: published Claude-4 word-agent counts, uniform exposure, 20,000 attempts.
#[test]
fn paper_check_value_claude_word_agent() {
    let counts = [
        ("PERSONAL", "ATTITUDE", 3879),
        ("ATTITUDE", "PERSONAL", 66),
        ("PROBLEMS", "ATTITUDE", 3558),
        ("ATTITUDE", "PROBLEMS", 20),
        ("BUZZY", "ATTITUDE", 3859),
        ("TURKEY", "ATTITUDE", 4122),
        ("BUZZY", "TURKEY", 238),
    ];
    let mut b = GraphBuilder::default();
    for (row, (f, g, n)) in counts.into_iter().enumerate() {
        let (f, g) = (b.intern(f), b.intern(g));
        b.add(f, g, n, row as u64).unwrap();
    }
    let graph = b.finish();
    let settings = FitSettings {
        exposure: Exposure::Uniform,
        attempts: Some(20_000),
        ..Default::default()
    };
    let (v, report) = fit(&graph, &settings, &CpuBackend::new("test")).unwrap();
    assert!(report.converged, "{}", report.status);
    let id = |name: &str| graph.names.iter().position(|n| n == name).unwrap();
    let value = |name: &str| v.value[id(name)];
    let attitude = value("ATTITUDE").unwrap();
    let personal = value("PERSONAL").unwrap() - attitude;
    let problems = value("PROBLEMS").unwrap() - attitude;
    assert!(
        (personal - 4.07).abs() <= 0.01,
        "PERSONAL − ATTITUDE = {personal}"
    );
    assert!(
        (problems - 5.18).abs() <= 0.01,
        "PROBLEMS − ATTITUDE = {problems}"
    );
    for name in ["TURKEY", "BUZZY"] {
        assert_eq!(value(name), None, "{name} must not be identifiable");
        assert_eq!(v.status[id(name)], Identifiability::NotOnCycle);
    }
    assert_eq!(report.identifiable_states, 3);
}

#[test]
fn a_ridge_gives_every_kept_state_a_finite_value() {
    let mut b = GraphBuilder::default();
    let names = ["PERSONAL", "ATTITUDE", "BUZZY", "TURKEY"];
    let ids: Vec<u32> = names.iter().map(|n| b.intern(n)).collect();
    for (row, (f, g, n)) in [
        (0, 1, 3879),
        (1, 0, 66),
        (2, 1, 3859),
        (3, 1, 4122),
        (2, 3, 238),
    ]
    .into_iter()
    .enumerate()
    {
        b.add(ids[f], ids[g], n, row as u64).unwrap();
    }
    let graph = b.finish();
    let cpu = CpuBackend::new("test");
    let (plain, _) = fit(&graph, &FitSettings::default(), &cpu).unwrap();
    assert_eq!(plain.identifiable(), 2);
    let ridge = FitSettings {
        l2: 0.1,
        ..Default::default()
    };
    let (v, report) = fit(&graph, &ridge, &cpu).unwrap();
    assert!(report.converged, "{}", report.status);
    assert_eq!(v.identifiable(), 4);
    let value = |name: &str| v.value[graph.names.iter().position(|n| n == name).unwrap()].unwrap();
    // States only ever left sit above the attractor they flow into, and the ridge keeps them finite.
    assert!(value("BUZZY") > value("ATTITUDE") && value("TURKEY") > value("ATTITUDE"));
    assert!(v.value.iter().flatten().all(|x| x.abs() < 100.0));
}

fn paper_settings() -> AnalyzeSettings {
    let mut s = AnalyzeSettings {
        paper: true,
        ..Default::default()
    };
    s.fit.paper = true;
    s.pairs.paper = true;
    s
}

fn relative(a: f64, b: f64) -> f64 {
    (a / b - 1.0).abs()
}

#[test]
fn paper_mode_reproduces_the_reference_output_from_json_and_parquet() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("paper_parity/expected.json")).unwrap(),
    )
    .unwrap();
    let reference_action = expected["final_action"].as_f64().unwrap();
    for input in ["parity_driven.json", "parity_driven.parquet"] {
        let a = analyze(
            &[fixture(&format!("paper_parity/{input}"))],
            &paper_settings(),
        )
        .unwrap()
        .pooled;
        assert_eq!(a.graph.transitions(), 20_000, "{input}");
        assert_eq!(
            a.cycle_test.n as u64,
            expected["loops"]["n"].as_u64().unwrap(),
            "{input}: loops"
        );
        assert!(
            relative(
                a.cycle_test.chi2_ndf_reference.unwrap(),
                expected["loops"]["chi2_ndf"].as_f64().unwrap()
            ) < 1e-6
        );
        assert_eq!(
            a.pair_test.n as u64,
            expected["pairs"]["n"].as_u64().unwrap(),
            "{input}: pairs"
        );
        let r = a.pair_test.pearson_r.unwrap();
        assert!(
            relative(r, expected["pairs"]["pearson_r"].as_f64().unwrap()) < 1e-6,
            "{input}: r = {r}"
        );
        let chi2 = a.pair_test.chi2_ndf_reference.unwrap();
        assert!(
            relative(chi2, expected["pairs"]["chi2_ndf"].as_f64().unwrap()) < 1e-6,
            "{input}: χ²/ndf = {chi2}"
        );
        assert!(
            relative(a.fit.action, reference_action) < 1e-9,
            "{input}: action {}",
            a.fit.action
        );

        // The converged fit reaches the reference's action or lower.
        let converged = analysis_of(
            a.graph.clone(),
            &CpuBackend::new("test"),
            &AnalyzeSettings::default(),
        );
        assert!(converged.fit.converged);
        assert!(
            converged.fit.action <= reference_action,
            "{} > {reference_action}",
            converged.fit.action
        );
    }
}
