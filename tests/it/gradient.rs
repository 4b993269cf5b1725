//! The analytic gradient of the action matches central finite differences on random graphs.

use detbal::backend::{Backend, cpu::CpuBackend};
use detbal::fit::problem::ActionProblem;
use proptest::prelude::*;

fn problem_strategy() -> impl Strategy<Value = (ActionProblem, Vec<f64>)> {
    (2usize..30).prop_flat_map(|n| {
        let edge = (0..n as u32, 0..n as u32, 0.01f64..50.0)
            .prop_filter("no self-loops", |(a, b, _)| a != b);
        (
            prop::collection::vec(edge, 1..120),
            prop::collection::vec(-6.0f64..6.0, n),
            prop_oneof![Just(0.0), 0.0f64..2.0],
            prop::option::of(prop::collection::vec(-6.0f64..6.0, n)),
        )
            .prop_map(move |(edges, v, l2, prior_mean)| {
                let p = ActionProblem::new(
                    n,
                    edges.iter().map(|e| e.0).collect(),
                    edges.iter().map(|e| e.1).collect(),
                    edges.iter().map(|e| e.2).collect(),
                    l2,
                )
                .unwrap();
                // A ridge centred away from 0 half the time.
                let p = match prior_mean {
                    Some(m) => p.with_prior_mean(m),
                    None => p,
                };
                (p, v)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn analytic_gradient_matches_finite_differences((problem, v) in problem_strategy()) {
        let cpu = CpuBackend::new("test");
        let eval = cpu.edge_action(&problem, &v).unwrap();
        let h = 1e-5;
        for i in 0..v.len() {
            let (mut up, mut down) = (v.clone(), v.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (cpu.edge_action(&problem, &up).unwrap().value - cpu.edge_action(&problem, &down).unwrap().value) / (2.0 * h);
            let scale = 1.0 + eval.gradient[i].abs();
            prop_assert!((numeric - eval.gradient[i]).abs() <= 1e-6 * scale,
                "∂S/∂V[{}]: analytic {} vs numeric {}", i, eval.gradient[i], numeric);
        }
    }
}
