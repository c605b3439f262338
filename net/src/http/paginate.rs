//! Nomad's list pagination: `per_page`, `next_token`, `reverse`.

/// Returns one page of `items` (already in key order, each with its token) and the token of
/// the first item of the next page, if there is one.
pub(crate) fn paginate<T>(
    mut items: Vec<(String, T)>,
    per_page: usize,
    next_token: &str,
    reverse: bool,
) -> (Vec<T>, Option<String>) {
    if reverse {
        items.reverse();
    }
    let start = if next_token.is_empty() {
        0
    } else if reverse {
        items
            .iter()
            .position(|(t, _)| t.as_str() <= next_token)
            .unwrap_or(items.len())
    } else {
        items
            .iter()
            .position(|(t, _)| t.as_str() >= next_token)
            .unwrap_or(items.len())
    };
    let mut rest = items.into_iter().skip(start);
    let mut page = Vec::new();
    let limit = if per_page == 0 { usize::MAX } else { per_page };
    for (_, v) in rest.by_ref().take(limit) {
        page.push(v);
    }
    let next = rest.next().map(|(t, _)| t);
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn items(n: usize) -> Vec<(String, Value)> {
        (0..n).map(|i| (format!("t{i}"), Value::from(i))).collect()
    }

    #[test]
    fn pages_forward_and_back() {
        let (page, next) = paginate(items(5), 2, "", false);
        assert_eq!(page, vec![Value::from(0), Value::from(1)]);
        assert_eq!(next.as_deref(), Some("t2"));
        let (page, next) = paginate(items(5), 2, "t4", false);
        assert_eq!(page, vec![Value::from(4)]);
        assert_eq!(next, None);
        let (page, _) = paginate(items(5), 0, "", true);
        assert_eq!(page.len(), 5);
        assert_eq!(page[0], Value::from(4));
    }
}
