//! The AWS SDK clients, built from the one `SdkConfig` in one place, so the server and `doctor`
//! call AWS the same way.
//!
//! Regional services (STS, Athena) use the configured region. The global services pick a region
//! of the configured partition: IAM and Cost Explorer the configured region (their endpoint rules
//! map every region of a partition to its global endpoint), us-east-1 when none is configured;
//! Budgets and the Price List API the partition's global region (us-east-1 in `aws`,
//! cn-northwest-1 in `aws-cn`, us-gov-west-1 in `aws-us-gov`), where they are served.

use aws_config::{Region, SdkConfig};

/// The AWS partition a region belongs to, as the SDK's endpoint rules name it
/// (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`, `aws-iso-e`, `aws-iso-f`, `aws-eusc`).
pub fn partition(region: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 7] = [
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("us-iso-", "aws-iso"),
        ("eu-isoe-", "aws-iso-e"),
        ("eusc-", "aws-eusc"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map(|(_, p)| *p)
        .unwrap_or("aws")
}

/// The region where a partition's global services sign requests (the SDK's
/// `implicitGlobalRegion`).
pub fn global_region(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "cn-northwest-1",
        "aws-us-gov" => "us-gov-west-1",
        "aws-iso" => "us-iso-east-1",
        "aws-iso-b" => "us-isob-east-1",
        "aws-iso-e" => "eu-isoe-west-1",
        "aws-iso-f" => "us-isof-south-1",
        "aws-eusc" => "eusc-de-east-1",
        _ => "us-east-1",
    }
}

/// The configured region (an empty `AWS_REGION` configures none), or us-east-1.
fn region_or_default(sdk: &SdkConfig) -> Region {
    sdk.region()
        .filter(|r| !r.as_ref().trim().is_empty())
        .cloned()
        .unwrap_or_else(|| Region::new("us-east-1"))
}

/// The global region of the configured region's partition.
fn partition_global_region(sdk: &SdkConfig) -> Region {
    Region::new(global_region(partition(region_or_default(sdk).as_ref())))
}

pub fn cost_explorer(sdk: &SdkConfig) -> aws_sdk_costexplorer::Client {
    aws_sdk_costexplorer::Client::from_conf(
        aws_sdk_costexplorer::config::Builder::from(sdk)
            .region(region_or_default(sdk))
            .build(),
    )
}

pub fn iam(sdk: &SdkConfig) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(sdk)
            .region(region_or_default(sdk))
            .build(),
    )
}

pub fn budgets(sdk: &SdkConfig) -> aws_sdk_budgets::Client {
    aws_sdk_budgets::Client::from_conf(
        aws_sdk_budgets::config::Builder::from(sdk)
            .region(partition_global_region(sdk))
            .build(),
    )
}

pub fn pricing(sdk: &SdkConfig) -> aws_sdk_pricing::Client {
    aws_sdk_pricing::Client::from_conf(
        aws_sdk_pricing::config::Builder::from(sdk)
            .region(partition_global_region(sdk))
            .build(),
    )
}

pub fn sts(sdk: &SdkConfig) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(sdk)
}

pub fn athena(sdk: &SdkConfig) -> aws_sdk_athena::Client {
    aws_sdk_athena::Client::new(sdk)
}

pub fn logs(sdk: &SdkConfig) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(sdk)
}

pub fn bedrock(sdk: &SdkConfig) -> aws_sdk_bedrock::Client {
    aws_sdk_bedrock::Client::new(sdk)
}

pub fn registry_control(sdk: &SdkConfig) -> aws_sdk_agentregistrycontrol::Client {
    aws_sdk_agentregistrycontrol::Client::new(sdk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_sdk_region_patterns() {
        for (region, p, global) in [
            ("us-east-1", "aws", "us-east-1"),
            ("eu-west-3", "aws", "us-east-1"),
            ("cn-north-1", "aws-cn", "cn-northwest-1"),
            ("us-gov-east-1", "aws-us-gov", "us-gov-west-1"),
            ("us-iso-east-1", "aws-iso", "us-iso-east-1"),
            ("us-isob-east-1", "aws-iso-b", "us-isob-east-1"),
            ("eusc-de-east-1", "aws-eusc", "eusc-de-east-1"),
        ] {
            assert_eq!(partition(region), p, "{region}");
            assert_eq!(global_region(p), global, "{region}");
        }
    }
}
