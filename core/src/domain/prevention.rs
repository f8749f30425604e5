//! Keeping principals attributable from the day they are created: the IAM policy (usable as a
//! service control policy too) that refuses to create a user or role without the required tag
//! keys and refuses to remove them. Condition keys: `aws:RequestTag/<key>` and `aws:TagKeys`
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html>).

/// The IAM policy that makes principals carry the keys from creation on.
pub fn prevention_policy(keys: &[String]) -> serde_json::Value {
    let null_conditions: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (format!("aws:RequestTag/{k}"), serde_json::json!("true")))
        .collect();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RequireAttributionTagsOnCreate",
                "Effect": "Deny",
                "Action": ["iam:CreateUser", "iam:CreateRole"],
                "Resource": "*",
                "Condition": {"Null": null_conditions}
            },
            {
                "Sid": "KeepAttributionTags",
                "Effect": "Deny",
                "Action": ["iam:UntagUser", "iam:UntagRole"],
                "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": keys}}
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_requires_every_key() {
        let p = prevention_policy(&["team".into(), "cost-center".into()]);
        assert_eq!(
            p["Statement"][0]["Condition"]["Null"]["aws:RequestTag/team"],
            "true"
        );
        assert_eq!(
            p["Statement"][0]["Condition"]["Null"]["aws:RequestTag/cost-center"],
            "true"
        );
        assert_eq!(
            p["Statement"][1]["Condition"]["ForAnyValue:StringEquals"]["aws:TagKeys"][1],
            "cost-center"
        );
        assert_eq!(p["Statement"][0]["Action"][1], "iam:CreateRole");
    }
}
