//! The iteration rule EM and the DP fit share, as scikit-learn's
//! `BaseMixture.fit`: step until the objective changes by less than `tol`
//! or `max_iter` steps have run.

/// Where iterating stopped.
pub struct Converged<S> {
    /// The last state.
    pub state: S,
    /// Steps run.
    pub n_iter: usize,
    /// Whether the change fell below `tol`.
    pub converged: bool,
    /// The objective of the last step.
    pub objective: f64,
}

/// Runs `step` (state → next state and its objective) from `state`.
pub fn iterate<S, E>(
    mut state: S,
    max_iter: usize,
    tol: f64,
    progress: &mut dyn FnMut(usize, f64),
    mut step: impl FnMut(&S) -> Result<(S, f64), E>,
) -> Result<Converged<S>, E> {
    let mut objective = f64::NEG_INFINITY;
    let mut converged = false;
    let mut n_iter = 0;
    for it in 1..=max_iter {
        n_iter = it;
        let prev = objective;
        let (next, value) = step(&state)?;
        state = next;
        objective = value;
        progress(it, objective);
        if (objective - prev).abs() < tol {
            converged = true;
            break;
        }
    }
    Ok(Converged {
        state,
        n_iter,
        converged,
        objective,
    })
}
