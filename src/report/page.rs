//! HTML pages from templates (minijinja). Templates named `*.html` escape every value on output,
//! so ticket text (names, comments, categories) can never become markup; only the charts' SVG,
//! drawn by plotters (which escapes its own text), is marked safe.

use anyhow::{Context, Result};
use minijinja::value::{Serde, Value};
use minijinja::{Environment, context};
use serde::Serialize;

const STYLE: &str = include_str!("templates/style.css");

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.add_template("base.html", include_str!("templates/base.html"))?;
    env.add_template("weekly.html", include_str!("templates/weekly.html"))?;
    env.add_template("dashboard.html", include_str!("templates/dashboard.html"))?;
    env.add_template("quality.html", include_str!("templates/quality.html"))?;
    env.add_filter("pct", |v: Value| fmt(&v, |x| format!("{:.1}%", x * 100.0)));
    env.add_filter("duration", |v: Value| fmt(&v, super::duration));
    env.add_filter("num", |v: Value, digits: Option<usize>| {
        fmt(&v, |x| format!("{x:.*}", digits.unwrap_or(0)))
    });
    env.add_filter("signed", |v: Value, digits: Option<usize>| {
        fmt(&v, |x| format!("{x:+.*}", digits.unwrap_or(1)))
    });
    // Timestamps (microseconds, UTC) to the minute: "2026-11-16 10:05".
    env.add_filter("when", |v: Value| {
        i64::try_from(v)
            .ok()
            .map(|t| {
                let s = crate::timeparse::format_micros(t);
                s.get(..16).unwrap_or(&s).replace('T', " ")
            })
            .unwrap_or_else(|| "–".into())
    });
    Ok(env)
}

/// A number through `f`, or "–" when it is missing.
fn fmt(v: &Value, f: impl Fn(f64) -> String) -> String {
    match f64::try_from(v.clone()) {
        Ok(x) if !v.is_none() && !v.is_undefined() && x.is_finite() => f(x),
        _ => "–".into(),
    }
}

/// Renders template `name` with `ctx` (the style sheet is added as `style`).
pub fn render<S: Serialize>(name: &str, ctx: &S) -> Result<String> {
    let env = environment()?;
    let t = env.get_template(name)?;
    t.render(context! { style => STYLE, ..Value::from(Serde(ctx)) })
        .with_context(|| format!("rendering {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_format_and_show_missing_values() {
        let env = environment().unwrap();
        let out = env
            .render_str(
                "{{ a|pct }} {{ b|pct }} {{ c|duration }} {{ f|duration }} {{ a|num(2) }} {{ d|signed }} {{ e|when }}",
                context! { a => 0.8125, b => (), c => 7200.0, f => 720.0, d => -1.25, e => 1_794_823_500_000_000_i64 },
            )
            .unwrap();
        assert_eq!(out, "81.2% – 2.0 h 12 min 0.81 -1.2 2026-11-16 10:05");
    }

    #[test]
    fn html_templates_escape_ticket_text() {
        let mut env = environment().unwrap();
        env.add_template("t.html", "<p>{{ comment }}</p>").unwrap();
        let out = env
            .get_template("t.html")
            .unwrap()
            .render(context! { comment => "\"><img src=x onerror=alert(1)><script>x</script>" })
            .unwrap();
        assert!(!out.contains("<img") && !out.contains("<script"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }
}
