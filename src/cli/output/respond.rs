//! Responses to leaked credentials as text.

use super::clean;
use crate::steps::respond::Response;

pub fn responses_text(done: &[Response]) -> String {
    let mut out = String::new();
    for r in done {
        out.push_str(&format!(
            "Response to {} key {} of {} in account {} ({} {}; run {}): {}\n",
            r.reason.as_str(),
            clean(&r.key),
            clean(r.user.as_deref().unwrap_or("(unknown user)")),
            r.account,
            clean(&r.event_type),
            clean(&r.event_id),
            r.run_id,
            r.status
        ));
        out.push_str(&format!("  {}\n", clean(&r.detail)));
        for s in &r.steps {
            out.push_str(&format!(
                "  {:<16} {:<10} {}\n",
                s.step,
                s.status.as_str(),
                clean(&s.detail)
            ));
        }
        if let Some(a) = &r.activity {
            out.push_str(&format!("  Activity: {}\n", clean(&a.headline())));
            for line in a.describe().lines() {
                out.push_str(&format!("    {}\n", clean(line)));
            }
        }
        for p in &r.investigation_problems {
            out.push_str(&format!("  Investigation incomplete: {}\n", clean(p)));
        }
        if !r.undo.is_empty() {
            out.push_str("  Undo:\n");
            for u in &r.undo {
                out.push_str(&format!("    {}\n", clean(u)));
            }
        }
        out.push('\n');
    }
    out
}
