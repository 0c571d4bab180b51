//! The per-step gauge of calls in progress (the console's "now" view).

/// Moves one call from step `from` to step `to` in the per-step gauge (an empty name: not in
/// a step, i.e. the call starts or ends).
pub(crate) fn move_step(stats: &crate::metrics::Stats, campaign: &str, from: &str, to: &str) {
    let mut steps = stats
        .calls_by_step
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !from.is_empty() {
        let key = (campaign.to_string(), from.to_string());
        if let Some(n) = steps.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                steps.remove(&key);
            }
        }
    }
    if !to.is_empty() {
        *steps
            .entry((campaign.to_string(), to.to_string()))
            .or_insert(0) += 1;
    }
}
