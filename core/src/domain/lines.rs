//! Kinds of bill lines: which are usage (attributable to a caller) and which are adjustments
//! (credits, refunds, tax, discounts, fees), as CUR 2.0 (`line_item_line_item_type`) and Cost
//! Explorer (`RECORD_TYPE`) spell them.
//!
//! Sources: CUR line item columns
//! (<https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2-line-item.html>, and
//! the legacy list at <https://docs.aws.amazon.com/cur/latest/userguide/Lineitem-columns.html>):
//! `Usage`, `DiscountedUsage`, `SavingsPlanCoveredUsage`, `SavingsPlanNegation`, `Credit`,
//! `Refund`, `Tax`, `Fee`, `RIFee`, `SavingsPlanUpfrontFee`, `SavingsPlanRecurringFee`; with
//! "manual discount compatibility" on, discounts come as lines of their own (`EdpDiscount`,
//! `PrivateRateDiscount`, `BundledDiscount`, `SppDiscount`, ...) while the usage lines'
//! `line_item_net_unblended_cost` already has them taken off
//! (<https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2-discount.html>).
//! Both are open sets: an unknown type is an adjustment, listed under its own name.

/// CUR line types that are usage: attributable to a caller, counted in the rows.
pub const USAGE_LINE_TYPES: [&str; 3] = ["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"];

/// Cost Explorer record types that are usage.
pub const USAGE_RECORD_TYPES: [&str; 3] = ["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"];

pub fn is_usage(line_item_type: &str) -> bool {
    USAGE_LINE_TYPES.contains(&line_item_type)
}

/// Is this adjustment already reflected in the usage lines' net cost (a discount)? Under
/// `net_unblended` it is listed but not subtracted again.
///
/// A `SavingsPlanNegation` is not: it offsets a `SavingsPlanCoveredUsage` line, whose
/// unblended and net unblended costs are still the On-Demand figures; the negation line carries
/// the offset in both columns, so it is subtracted under either metric
/// (<https://docs.aws.amazon.com/cur/latest/userguide/cur-sp.html>). Savings Plans cover EC2,
/// Fargate, Lambda and SageMaker AI, not Bedrock, so such a line reaches us only from a
/// filter wider than Bedrock.
pub fn in_net(line_item_type: &str) -> bool {
    let t = line_item_type.trim();
    t.ends_with("Discount") || t.ends_with(" Discount")
}

/// The CUR spelling of a Cost Explorer record type, where they differ (the CE names are the
/// console's: "Enterprise Discount Program Discount" is CUR's `EdpDiscount`).
pub fn cur_name_of_record_type(record_type: &str) -> String {
    match record_type {
        "Enterprise Discount Program Discount" => "EdpDiscount",
        "Private Rate Card Discount" => "PrivateRateDiscount",
        "Bundled Discount" => "BundledDiscount",
        "Solution Provider Program Discount" => "SppDiscount",
        "Recurring reservation fee" => "RIFee",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_lines() {
        assert!(is_usage("Usage") && is_usage("SavingsPlanCoveredUsage"));
        assert!(!is_usage("Credit") && !is_usage("EdpDiscount") && !is_usage("Tax"));
        for t in [
            "EdpDiscount",
            "PrivateRateDiscount",
            "BundledDiscount",
            "Bundled Discount",
        ] {
            assert!(in_net(t), "{t}");
        }
        for t in [
            "Credit",
            "Refund",
            "Tax",
            "Fee",
            "Usage",
            "SavingsPlanNegation",
        ] {
            assert!(!in_net(t), "{t}");
        }
        assert_eq!(
            cur_name_of_record_type("Enterprise Discount Program Discount"),
            "EdpDiscount"
        );
        assert_eq!(cur_name_of_record_type("Credit"), "Credit");
    }
}
