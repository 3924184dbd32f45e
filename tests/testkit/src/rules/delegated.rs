//! Delegated administrators, which moto 5.2.5 knows only in part:
//! Organizations' registry of them for the services moto does not take
//! (CloudTrail's among them), the Organizations data a delegated
//! administrator may read, and CloudTrail's organization delegated
//! administrator, which reads and updates the organization's trails in the
//! management account.
//!
//! moto 5.2.5 keeps Organizations and CloudTrail per account. Its
//! `RegisterDelegatedAdministrator` takes six services
//! ([`MOTO_DELEGATION_PRINCIPALS`]) and answers `InvalidInputException`
//! for `cloudtrail.amazonaws.com`; its CloudTrail has no
//! `RegisterOrganizationDelegatedAdmin`; a member account's Organizations
//! and CloudTrail requests read that account's own, empty, backends; and
//! a trail lives only in the account that created it.
//!
//! What the layer serves "as the management account" reaches moto signed by
//! the management account's credentials ([`MANAGEMENT_ACCESS_KEY`]), in
//! place of the client's request ([`Rule::upstream`]), with the access key
//! ID the client signed it with in [`LAYER_CALLER_HEADER`]; the proxy
//! records the client's request as it was sent. Where a rule needs to know
//! what moto holds (whether an ARN names an organization trail, whether an
//! account is in the organization), it asks moto itself as the management
//! account, with a `User-Agent` that `fixture.py recording show` leaves out.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::iam_sts::is_account;
use super::world::{Delegation, World};
use super::{
    AWS_JSON_1_1, MANAGEMENT_ACCESS_KEY, json_answer, json_body, json_error, json_error_with,
    moto_call, page, signing_region,
};
use crate::proxy::{Request, Response, Rule, Traffic};

/// CloudTrail's service principal.
pub const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// The services whose delegated administrators moto 5.2.5 registers
/// itself (`FakeDelegatedAdministrator.SUPPORTED_SERVICES` of
/// `moto/organizations/models.py`); the layer keeps the others' registry
/// ([`World::delegated_administrator`]).
pub const MOTO_DELEGATION_PRINCIPALS: [&str; 6] = [
    "config-multiaccountsetup.amazonaws.com",
    "guardduty.amazonaws.com",
    "access-analyzer.amazonaws.com",
    "macie.amazonaws.com",
    "servicecatalog.amazonaws.com",
    "ssm.amazonaws.com",
];

/// The header a request the layer sends moto as the management account
/// carries: the access key ID the client signed it with, so that `fixture.py
/// recording show` reports the client's credentials, not the layer's.
pub const LAYER_CALLER_HEADER: &str = "x-trailkey-layer-caller";

/// In the `User-Agent` of the layer's own requests to moto.
pub(super) const USER_AGENT: &str = "trailkey-fixture real-aws-layer";

/// How many delegated administrators CloudTrail takes: "You can have a
/// maximum of three CloudTrail delegated administrators per organization"
/// (<https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-delegated-administrator.html>).
const CLOUDTRAIL_DELEGATED_ADMINISTRATORS: usize = 3;

/// "You don't have permissions to access this resource.": Organizations'
/// `AccessDeniedException` to a member account that is not a delegated
/// administrator, as AWS words it (e.g. for `ListAccounts`, `ListRoots` and
/// `ListDelegatedAdministrators`, in reports of that error).
const ACCESS_DENIED: &str = "You don't have permissions to access this resource.";

const CLOUDTRAIL_TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";
const ORGANIZATIONS_TARGET: &str = "AWSOrganizationsV20161128";

/// Now, in seconds since the Unix epoch, as Organizations' JSON timestamps.
pub(super) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Whether the fixture sent `request` (its `User-Agent` or
/// `X-Amz-User-Agent` names `trailkey-fixture`).
pub(crate) fn from_the_fixture(request: &Request) -> bool {
    ["user-agent", "x-amz-user-agent"].iter().any(|h| {
        request
            .header(h)
            .is_some_and(|v| v.contains("trailkey-fixture"))
    })
}

/// The access key ID that signed `request`.
pub(super) fn access_key(request: &Request) -> String {
    request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// `request` signed by the management account's credentials
/// ([`MANAGEMENT_ACCESS_KEY`]), without the client's session token, with
/// the client's access key ID in [`LAYER_CALLER_HEADER`].
fn as_management(request: &Request) -> Request {
    let caller = access_key(request);
    let mut upstream = request.clone();
    upstream.headers.retain(|(name, _)| {
        !name.eq_ignore_ascii_case("x-amz-security-token")
            && !name.eq_ignore_ascii_case(LAYER_CALLER_HEADER)
    });
    for (name, value) in &mut upstream.headers {
        if name.eq_ignore_ascii_case("authorization") {
            *value = value.replacen(
                &format!("Credential={caller}/"),
                &format!("Credential={MANAGEMENT_ACCESS_KEY}/"),
                1,
            );
        }
    }
    upstream
        .headers
        .push((LAYER_CALLER_HEADER.to_owned(), caller));
    upstream
}

/// A call of the layer's own to moto as the management account.
fn as_management_call(
    moto: &str,
    service: &str,
    region: &str,
    operation: &str,
    body: &Value,
) -> Result<Value, (String, String)> {
    let prefix = match service {
        "cloudtrail" => CLOUDTRAIL_TARGET,
        _ => ORGANIZATIONS_TARGET,
    };
    moto_call(
        moto,
        MANAGEMENT_ACCESS_KEY,
        USER_AGENT,
        (service, region, &format!("{prefix}.{operation}")),
        body,
    )
}

/// An Organizations call of the layer's own to moto as the management
/// account (Organizations' endpoint is in us-east-1).
fn organizations_call(
    moto: &str,
    operation: &str,
    body: &Value,
) -> Result<Value, (String, String)> {
    as_management_call(moto, "organizations", "us-east-1", operation, body)
}

/// Registers `account` for `service_principal` in moto, as the management
/// account.
pub(super) fn register_in_moto(
    moto: &str,
    service_principal: &str,
    account: &str,
) -> Result<(), (String, String)> {
    let body = json!({"AccountId": account, "ServicePrincipal": service_principal});
    match organizations_call(moto, "RegisterDelegatedAdministrator", &body) {
        Ok(_) => Ok(()),
        Err((code, _)) if code == "AccountAlreadyRegisteredException" => Ok(()),
        Err(e) => Err(e),
    }
}

/// moto's delegated administrators (of `service_principal`, else of every
/// service it takes), as its `ListDelegatedAdministrators` to the
/// management account answers them.
pub(super) fn moto_delegated_administrators(
    moto: &str,
    service_principal: Option<&str>,
) -> Result<Vec<Value>, (String, String)> {
    let mut admins = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({});
        if let Some(principal) = service_principal {
            body["ServicePrincipal"] = json!(principal);
        }
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let answer = organizations_call(moto, "ListDelegatedAdministrators", &body)?;
        admins.extend(
            answer["DelegatedAdministrators"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        token = answer["NextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            return Ok(admins);
        }
    }
}

/// The services moto has `account` registered for, as `DelegatedService`s.
fn moto_delegated_services(moto: &str, account: &str) -> Vec<Value> {
    let body = json!({ "AccountId": account });
    organizations_call(moto, "ListDelegatedServicesForAccount", &body)
        .ok()
        .and_then(|a| a["DelegatedServices"].as_array().cloned())
        .unwrap_or_default()
}

/// Account `id` as the management account's `DescribeAccount` shows it, if
/// it is in the organization.
fn organization_account(moto: &str, id: &str) -> Option<Value> {
    organizations_call(moto, "DescribeAccount", &json!({ "AccountId": id }))
        .ok()
        .map(|a| a["Account"].clone())
        .filter(Value::is_object)
}

/// Whether account `id` of the organization is suspended.
fn suspended(account: &Value) -> bool {
    account["Status"] == "SUSPENDED" || account["State"] == "SUSPENDED"
}

/// Who sent a request, as the delegated administrator rules see it.
enum Caller {
    /// The management account (the default credentials, or a role of it).
    Management,
    /// A member account of the organization, by ID.
    Member(String),
    /// Another account, or one the layer cannot tell (no management account
    /// known, no moto endpoint).
    Other,
}

/// Who sent `request`, and the moto endpoint to ask about it.
fn caller(world: &World, request: &Request, traffic: &Traffic) -> (Caller, Option<String>) {
    let (management, moto) = {
        let facts = world.facts();
        (facts.default_account.clone(), facts.moto.clone())
    };
    let Some(management) = management else {
        return (Caller::Other, moto);
    };
    let account = world.account(request, traffic);
    let caller = if account == management {
        Caller::Management
    } else if is_account(&account)
        && moto
            .as_deref()
            .is_some_and(|m| organization_account(m, &account).is_some())
    {
        Caller::Member(account)
    } else {
        Caller::Other
    };
    (caller, moto)
}

/// Whether member `account` is a delegated administrator of
/// `service_principal`, in the layer's registry or in moto's.
fn delegated_for(world: &World, moto: &str, account: &str, service_principal: &str) -> bool {
    if MOTO_DELEGATION_PRINCIPALS.contains(&service_principal) {
        return moto_delegated_services(moto, account)
            .iter()
            .any(|s| s["ServicePrincipal"] == service_principal);
    }
    world
        .facts()
        .delegations
        .iter()
        .any(|d| d.account == account && d.service_principal == service_principal)
}

/// Whether member `account` is a delegated administrator of any service.
fn delegated_for_any(world: &World, moto: &str, account: &str) -> bool {
    world
        .facts()
        .delegations
        .iter()
        .any(|d| d.account == account)
        || !moto_delegated_services(moto, account).is_empty()
}

// ------------------------------------------------------------ CloudTrail

/// What a member account may do with the management account's organization
/// trails through a trail operation.
#[derive(Clone, Copy, PartialEq)]
enum Access {
    /// Any member account: "Users with CloudTrail permissions in member
    /// accounts will be able to see organization trails (including the
    /// trail ARN) ... (although member accounts must use the ARN for the
    /// organization trail, and not the name, when using the AWS CLI)"
    /// (<https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-concepts.html>);
    /// "If the trail is an organization trail and you are a member account
    /// in the organization in Organizations, you must provide the full ARN
    /// of that trail, and not just the name" (cloudtrail model,
    /// `GetTrailStatus`'s `Name`); "A member account with CloudTrail
    /// permissions can see any validation failures for an organization
    /// trail by ... running the AWS CLI get-trail-status command".
    Read,
    /// A delegated administrator ("can perform the same administrative tasks
    /// ... in CloudTrail as the management account"); other member accounts
    /// are answered `CloudTrailARNInvalidException`, "AccountID in ARN is
    /// wrong, you can only access resources with AccountID <caller>", as
    /// AWS answers a member account's `ListTags` of an organization trail
    /// (reported by tools that list a member account's trails' tags).
    DelegatedRead,
    /// A delegated administrator ("Update an organization trail: ...
    /// Delegated administrator account: Yes; Member accounts: No",
    /// cloudtrail-delegated-administrator.html); other member accounts are
    /// answered `NotOrganizationMasterAccountException`, which the model
    /// lists for each of these operations: "This exception is thrown when
    /// the Amazon Web Services account making the request to create or
    /// update an organization trail or event data store is not the
    /// management account for an organization in Organizations."
    Write,
}

/// The trail operations, the member of their request that names the trail
/// (a name or ARN; a list of ARNs for `ListTags`; an ARN for `AddTags` and
/// `RemoveTags`), and what a member account may do through them.
const TRAIL_OPERATIONS: [(&str, &str, Access); 13] = [
    ("GetTrail", "Name", Access::Read),
    ("GetTrailStatus", "Name", Access::Read),
    ("GetEventSelectors", "TrailName", Access::DelegatedRead),
    ("GetInsightSelectors", "TrailName", Access::DelegatedRead),
    ("ListTags", "ResourceIdList", Access::DelegatedRead),
    ("UpdateTrail", "Name", Access::Write),
    ("StartLogging", "Name", Access::Write),
    ("StopLogging", "Name", Access::Write),
    ("DeleteTrail", "Name", Access::Write),
    ("PutEventSelectors", "TrailName", Access::Write),
    ("PutInsightSelectors", "TrailName", Access::Write),
    ("AddTags", "ResourceId", Access::Write),
    ("RemoveTags", "ResourceId", Access::Write),
];

/// The organization trails of the management account that a member sees in
/// `region`, as the management account's `DescribeTrails` there shows them
/// (a multi-Region trail in every Region, another in its home Region).
fn organization_trails(moto: &str, region: &str) -> Vec<Value> {
    let body = json!({ "includeShadowTrails": true });
    as_management_call(moto, "cloudtrail", region, "DescribeTrails", &body)
        .ok()
        .and_then(|a| a["trailList"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["IsOrganizationTrail"] == true)
        .collect()
}

/// The management account's organization trails to CloudTrail's delegated
/// administrator and the organization's other member accounts, as the
/// CloudTrail User Guide describes them
/// (<https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-delegated-administrator.html>:
/// "this member account has administrative permissions on all organization
/// trails ... in the organization"; "organization trails ... only exist in
/// the management account"). moto keeps a trail in its creator's account
/// only. For a request of a member account of the organization:
///
/// * A trail operation ([`TRAIL_OPERATIONS`]) naming the trail by its ARN,
///   an organization trail of the management account, is served as the
///   management account (moto gets it signed by the management account's
///   credentials) when the member may do it ([`Access`]): every member may
///   read it (`GetTrail`, `GetTrailStatus`); the delegated administrator
///   (registered for [`CLOUDTRAIL`]) may also read its selectors and tags
///   and change it, the others are answered as [`Access`] says.
///   `UpdateTrail` with `IsOrganizationTrail` false is answered
///   `NotOrganizationMasterAccountException` even to the delegated
///   administrator: "Only the management account can convert an
///   organization trail ... to an account-level trail ... These actions are
///   not allowed for the delegated administrator because organization
///   trails and event data stores only exist in the management account."
/// * By name, the operation looks in the member's own account: a name the
///   member's account has no trail of is answered `TrailNotFoundException`
///   (as moto answers the member) before any other rule checks the
///   request (but the caller's identity policies, when a test attached
///   some to its role: IAM authorizes first, [`iam_identity_policies`](super::iam_identity_policies));
///   a trail of its own goes to moto.
/// * A `ListTags` naming trails of several owners is answered
///   `CloudTrailARNInvalidException`.
/// * `DescribeTrails` and `ListTrails` list the member's own trails (moto)
///   and the organization trails of the management account that apply to
///   the request's Region, with the management account's ARN:
///   "Users with CloudTrail permissions in member accounts will be able to
///   see this trail (including the trail ARN) when they ... run AWS CLI
///   commands such as describe-trails". `DescribeTrails` leaves them out
///   when `includeShadowTrails` is false ("A shadow trail is ... in the
///   case of an organization trail, the replication of an organization
///   trail in member accounts. If you do not include shadow trails,
///   organization trails in a member account ... will not be returned",
///   cloudtrail model), and with a `trailNameList` returns those it names
///   by ARN only ("If one or more trail names are specified, information
///   is returned only if the names match the names of trails belonging
///   only to the current Region and current account").
///
/// The management account's requests, and those of accounts outside the
/// organization, are left as they are.
pub fn cloudtrail_delegated_administrator(world: World) -> impl Rule {
    DelegatedTrails { world }
}

struct DelegatedTrails {
    world: World,
}

/// What a member's trail operation comes to.
enum TrailVerdict {
    /// Serve it as the management account.
    AsManagement,
    /// Answer it with this error.
    Refuse(Response),
}

impl DelegatedTrails {
    /// What a member's trail operation comes to; `None` for a request this
    /// rule leaves alone.
    fn verdict(&self, request: &Request, traffic: &Traffic) -> Option<TrailVerdict> {
        if request.service != "cloudtrail" {
            return None;
        }
        let (_, field, access) = TRAIL_OPERATIONS
            .iter()
            .find(|(operation, _, _)| request.action == *operation)?;
        let body = json_body(request);
        let named: Vec<String> = match &body[*field] {
            Value::String(s) => vec![s.clone()],
            Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let arns: Vec<&String> = named.iter().filter(|n| n.starts_with("arn:")).collect();
        let region = signing_region(request).unwrap_or_default();
        if arns.is_empty() {
            // By name, a request looks in the caller's own account.
            let [name] = &named[..] else {
                return None;
            };
            return self.not_in_own_account(request, traffic, name, *access, &region);
        }
        if arns.len() != named.len() {
            return None;
        }
        let (Caller::Member(member), Some(moto)) = caller(&self.world, request, traffic) else {
            return None;
        };
        let organization = organization_trails(&moto, &region);
        let is_organization_trail = |arn: &str| {
            organization
                .iter()
                .any(|t| t["TrailARN"].as_str() == Some(arn))
        };
        let of_organization = arns.iter().filter(|a| is_organization_trail(a)).count();
        let wrong_account = || {
            TrailVerdict::Refuse(json_error(
                "CloudTrailARNInvalidException",
                &format!(
                    "AccountID in ARN is wrong, you can only access resources with AccountID {member}."
                ),
            ))
        };
        if of_organization == 0 {
            return None;
        }
        if of_organization != arns.len() {
            return Some(wrong_account());
        }
        let delegated = delegated_for(&self.world, &moto, &member, CLOUDTRAIL);
        let not_management = || {
            TrailVerdict::Refuse(json_error(
                "NotOrganizationMasterAccountException",
                &format!(
                    "The request to {} an organization trail must be made by the management account of the organization or by a CloudTrail delegated administrator; account {member} is neither.",
                    request.action
                ),
            ))
        };
        Some(match access {
            Access::Read => TrailVerdict::AsManagement,
            Access::DelegatedRead if delegated => TrailVerdict::AsManagement,
            Access::DelegatedRead => wrong_account(),
            Access::Write if !delegated => not_management(),
            Access::Write
                if request.action == "UpdateTrail" && body["IsOrganizationTrail"] == false =>
            {
                TrailVerdict::Refuse(json_error(
                    "NotOrganizationMasterAccountException",
                    "Only the management account of the organization can convert an organization trail to an account-level trail.",
                ))
            }
            Access::Write => TrailVerdict::AsManagement,
        })
    }
}

impl DelegatedTrails {
    /// `TrailNotFoundException`, as moto answers it to the member, when a
    /// member names by `name` a trail its own account does not have: the
    /// trail is not found before anything else about the request is
    /// checked (another rule could otherwise take the name for the
    /// member). moto is asked with the member's own access key: the request
    /// itself for a read, `GetTrail` for a change.
    fn not_in_own_account(
        &self,
        request: &Request,
        traffic: &Traffic,
        name: &str,
        access: Access,
        region: &str,
    ) -> Option<TrailVerdict> {
        let (Caller::Member(_), Some(moto)) = caller(&self.world, request, traffic) else {
            return None;
        };
        let (operation, body) = match access {
            Access::Write => ("GetTrail", json!({ "Name": name })),
            Access::Read | Access::DelegatedRead => (request.action.as_str(), json_body(request)),
        };
        let target = format!("{CLOUDTRAIL_TARGET}.{operation}");
        let asked = moto_call(
            &moto,
            &access_key(request),
            USER_AGENT,
            ("cloudtrail", region, &target),
            &body,
        );
        match asked {
            Err((code, message)) if code == "TrailNotFoundException" => {
                Some(TrailVerdict::Refuse(json_error(&code, &message)))
            }
            _ => None,
        }
    }
}

impl Rule for DelegatedTrails {
    fn decide(&self, request: &Request, traffic: &Traffic) -> crate::proxy::Decision {
        match self.verdict(request, traffic) {
            Some(TrailVerdict::Refuse(answer)) => crate::proxy::Decision::Respond(answer),
            _ => crate::proxy::Decision::Forward,
        }
    }

    fn upstream(&self, request: &Request, traffic: &Traffic) -> Option<Request> {
        match self.verdict(request, traffic)? {
            TrailVerdict::AsManagement => Some(as_management(request)),
            TrailVerdict::Refuse(_) => None,
        }
    }

    fn rewrite(&self, request: &Request, response: Response, traffic: &Traffic) -> Response {
        let list = request.is("cloudtrail", "ListTrails");
        if !(request.is("cloudtrail", "DescribeTrails") || list) || response.status != 200 {
            return response;
        }
        let (Caller::Member(_), Some(moto)) = caller(&self.world, request, traffic) else {
            return response;
        };
        let body = json_body(request);
        if !list && body["includeShadowTrails"] == false {
            return response;
        }
        let named: Vec<&str> = body["trailNameList"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let region = signing_region(request).unwrap_or_default();
        let shown: Vec<Value> = organization_trails(&moto, &region)
            .into_iter()
            .filter(|t| {
                list || named.is_empty()
                    || t["TrailARN"].as_str().is_some_and(|arn| named.contains(&arn))
            })
            .map(|t| {
                if list {
                    json!({"TrailARN": t["TrailARN"], "Name": t["Name"], "HomeRegion": t["HomeRegion"]})
                } else {
                    t
                }
            })
            .collect();
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        let member = if list { "Trails" } else { "trailList" };
        match answer.get_mut(member).and_then(Value::as_array_mut) {
            Some(trails) => trails.extend(shown),
            None => answer[member] = Value::Array(shown),
        }
        Response {
            body: answer.to_string().into_bytes(),
            ..response
        }
    }
}

// --------------------------------------------------------- Organizations

/// The Organizations operations that "You can only call ... from the
/// management account or a member account that is a delegated
/// administrator" (organizations model, each operation's documentation)
/// and that only read: "[RegisterDelegatedAdministrator] grants read-only
/// access to Organizations service data". The layer answers
/// `ListDelegatedAdministrators` and `ListDelegatedServicesForAccount`
/// itself.
const DELEGATED_READS: [&str; 20] = [
    "DescribeAccount",
    "DescribeCreateAccountStatus",
    "DescribeOrganizationalUnit",
    "DescribePolicy",
    "DescribeResourcePolicy",
    "ListAWSServiceAccessForOrganization",
    "ListAccounts",
    "ListAccountsForParent",
    "ListAccountsWithInvalidEffectivePolicy",
    "ListChildren",
    "ListCreateAccountStatus",
    "ListEffectivePolicyValidationErrors",
    "ListHandshakesForOrganization",
    "ListOrganizationalUnitsForParent",
    "ListParents",
    "ListPolicies",
    "ListPoliciesForTarget",
    "ListRoots",
    "ListTagsForResource",
    "ListTargetsForPolicy",
];

/// Organizations' registry of delegated administrators, and what they may
/// read, as the Organizations API reference and the CloudTrail User Guide
/// describe them; moto 5.2.5 registers six services only
/// ([`MOTO_DELEGATION_PRINCIPALS`]) and reads a member account's own, empty,
/// Organizations backend. The layer keeps the registry of the other
/// services in the [`World`] ([`World::delegated_administrator`]) and
/// records the calls it answers ([`World::answered`]):
///
/// * `organizations:RegisterDelegatedAdministrator` and
///   `DeregisterDelegatedAdministrator` for a service moto does not take:
///   "You can only call this operation from the management account"
///   (`AccessDeniedException` otherwise); the management account itself is
///   a `ConstraintViolationException`
///   (`CANNOT_REGISTER_MASTER_AS_DELEGATED_ADMINISTRATOR`), a suspended
///   account too (`CANNOT_REGISTER_SUSPENDED_ACCOUNT_AS_DELEGATED_ADMINISTRATOR`),
///   an account not in the organization `AccountNotFoundException`, a
///   second registration `AccountAlreadyRegisteredException`, removing one
///   not registered `AccountNotRegisteredException` (organizations model).
///   For the services moto takes, moto answers.
/// * `cloudtrail:RegisterOrganizationDelegatedAdmin` (`MemberAccountId`)
///   and `DeregisterOrganizationDelegatedAdmin`
///   (`DelegatedAdminAccountId`), which moto lacks, register and remove
///   [`CLOUDTRAIL`]'s delegated administrator in the same registry, with
///   the cloudtrail model's errors: `NotOrganizationManagementAccountException`
///   from another account than the management account,
///   `CannotDelegateManagementAccountException`, `AccountNotFoundException`,
///   `AccountRegisteredException`, `AccountNotRegisteredException`, and
///   `DelegatedAdminAccountLimitExceededException` past three ("You can
///   have a maximum of three CloudTrail delegated administrators per
///   organization", cloudtrail-delegated-administrator.html).
/// * `ListDelegatedAdministrators` (with or without `ServicePrincipal`) and
///   `ListDelegatedServicesForAccount` answer the layer's registry and
///   moto's together. "You can only call this operation from the
///   management account or a member account that is a delegated
///   administrator" (of any service): another member account is answered
///   `AccessDeniedException`, "You don't have permissions to access this
///   resource.". `MaxResults` is 1 to 20 (model), else
///   `InvalidInputException`; without it the layer pages by 2 (AWS does not
///   document its default); a `NextToken` the layer did not give is an
///   `InvalidInputException`.
/// * The other reads of the management account's Organizations data
///   ([`DELEGATED_READS`]) from a member account: served as the management
///   account to a delegated administrator (of any service), answered
///   `AccessDeniedException` to the others.
pub fn organizations_delegated_administrators(world: World) -> impl Rule {
    DelegatedOrganizations { world }
}

struct DelegatedOrganizations {
    world: World,
}

impl Rule for DelegatedOrganizations {
    fn decide(&self, request: &Request, traffic: &Traffic) -> crate::proxy::Decision {
        use crate::proxy::Decision;
        let organizations = request.service == "organizations";
        let registry = match (request.service.as_str(), request.action.as_str()) {
            ("cloudtrail", "RegisterOrganizationDelegatedAdmin")
            | ("cloudtrail", "DeregisterOrganizationDelegatedAdmin")
            | ("organizations", "ListDelegatedAdministrators")
            | ("organizations", "ListDelegatedServicesForAccount") => true,
            ("organizations", "RegisterDelegatedAdministrator")
            | ("organizations", "DeregisterDelegatedAdministrator") => {
                let principal = json_body(request)["ServicePrincipal"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                !MOTO_DELEGATION_PRINCIPALS.contains(&principal.as_str())
            }
            _ => false,
        };
        let read = organizations && DELEGATED_READS.contains(&request.action.as_str());
        if !registry && !read {
            return Decision::Forward;
        }
        if self.world.facts().default_account.is_none() {
            return Decision::Forward;
        }
        let (caller, moto) = caller(&self.world, request, traffic);
        let Some(moto) = moto else {
            return Decision::Forward;
        };
        if read {
            return match caller {
                Caller::Member(member) if !delegated_for_any(&self.world, &moto, &member) => {
                    Decision::Respond(json_error("AccessDeniedException", ACCESS_DENIED))
                }
                _ => Decision::Forward,
            };
        }
        self.world.answering(request);
        Decision::Respond(self.registry(request, &caller, &moto))
    }

    fn upstream(&self, request: &Request, traffic: &Traffic) -> Option<Request> {
        if request.service != "organizations" || !DELEGATED_READS.contains(&request.action.as_str())
        {
            return None;
        }
        let (Caller::Member(member), Some(moto)) = caller(&self.world, request, traffic) else {
            return None;
        };
        delegated_for_any(&self.world, &moto, &member).then(|| as_management(request))
    }
}

impl DelegatedOrganizations {
    /// The answer to a registry operation.
    fn registry(&self, request: &Request, caller: &Caller, moto: &str) -> Response {
        let body = json_body(request);
        let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
        match request.action.as_str() {
            "RegisterDelegatedAdministrator" | "DeregisterDelegatedAdministrator" => {
                if !matches!(caller, Caller::Management) {
                    return json_error(
                        "AccessDeniedException",
                        "You don't have permissions to access this resource. You can only call this operation from the management account.",
                    );
                }
                let register = request.action == "RegisterDelegatedAdministrator";
                self.organizations_registration(
                    moto,
                    &text("AccountId"),
                    &text("ServicePrincipal"),
                    register,
                )
            }
            "RegisterOrganizationDelegatedAdmin" | "DeregisterOrganizationDelegatedAdmin" => {
                if !matches!(caller, Caller::Management) {
                    return json_error(
                        "NotOrganizationManagementAccountException",
                        "This operation must be called from the management account of the organization.",
                    );
                }
                let register = request.action == "RegisterOrganizationDelegatedAdmin";
                let account = if register {
                    text("MemberAccountId")
                } else {
                    text("DelegatedAdminAccountId")
                };
                self.cloudtrail_registration(moto, &account, register)
            }
            "ListDelegatedAdministrators" | "ListDelegatedServicesForAccount" => {
                match caller {
                    Caller::Management => {}
                    Caller::Member(member) if delegated_for_any(&self.world, moto, member) => {}
                    _ => return json_error("AccessDeniedException", ACCESS_DENIED),
                }
                if request.action == "ListDelegatedAdministrators" {
                    self.list_administrators(moto, &body)
                } else {
                    self.list_services(moto, &text("AccountId"))
                }
            }
            other => json_error(
                "InvalidAction",
                &format!("the layer does not answer {other}"),
            ),
        }
    }

    /// `organizations:RegisterDelegatedAdministrator` or
    /// `DeregisterDelegatedAdministrator` from the management account.
    fn organizations_registration(
        &self,
        moto: &str,
        account: &str,
        principal: &str,
        register: bool,
    ) -> Response {
        let management = self.world.facts().default_account.clone();
        if register && management.as_deref() == Some(account) {
            return json_error_with(
                "ConstraintViolationException",
                "You cannot register the management account of the organization as a delegated administrator.",
                json!({"Reason": "CANNOT_REGISTER_MASTER_AS_DELEGATED_ADMINISTRATOR"}),
            );
        }
        let Some(details) = organization_account(moto, account) else {
            return json_error(
                "AccountNotFoundException",
                "You specified an account that doesn't exist.",
            );
        };
        if register && suspended(&details) {
            return json_error_with(
                "ConstraintViolationException",
                "You cannot register a suspended account as a delegated administrator.",
                json!({"Reason": "CANNOT_REGISTER_SUSPENDED_ACCOUNT_AS_DELEGATED_ADMINISTRATOR"}),
            );
        }
        match self.change(account, principal, register) {
            Ok(()) => json_answer(AWS_JSON_1_1, json!({})),
            Err(()) if register => json_error(
                "AccountAlreadyRegisteredException",
                "The provided account is already a delegated administrator for your organization.",
            ),
            Err(()) => json_error(
                "AccountNotRegisteredException",
                "The provided account is not a registered delegated administrator for your organization.",
            ),
        }
    }

    /// `cloudtrail:RegisterOrganizationDelegatedAdmin` or
    /// `DeregisterOrganizationDelegatedAdmin` from the management account.
    fn cloudtrail_registration(&self, moto: &str, account: &str, register: bool) -> Response {
        let management = self.world.facts().default_account.clone();
        if register && management.as_deref() == Some(account) {
            return json_error(
                "CannotDelegateManagementAccountException",
                "This exception is thrown when the management account of an organization is registered as the CloudTrail delegated administrator.",
            );
        }
        if organization_account(moto, account).is_none() {
            return json_error(
                "AccountNotFoundException",
                &format!("Account {account} is not found or not part of an organization."),
            );
        }
        let registered = self.world.delegated_administrators(CLOUDTRAIL);
        if register
            && !registered.iter().any(|a| a == account)
            && registered.len() >= CLOUDTRAIL_DELEGATED_ADMINISTRATORS
        {
            return json_error(
                "DelegatedAdminAccountLimitExceededException",
                "This exception is thrown when the maximum number of CloudTrail delegated administrators is reached.",
            );
        }
        match self.change(account, CLOUDTRAIL, register) {
            Ok(()) => json_answer(AWS_JSON_1_1, json!({})),
            Err(()) if register => json_error(
                "AccountRegisteredException",
                &format!(
                    "Account {account} is already registered as the CloudTrail delegated administrator."
                ),
            ),
            Err(()) => json_error(
                "AccountNotRegisteredException",
                &format!(
                    "Account {account} is not registered as the CloudTrail delegated administrator."
                ),
            ),
        }
    }

    /// Adds or removes a delegation in the layer's registry; `Err` if it
    /// was already there, or not there.
    fn change(&self, account: &str, principal: &str, register: bool) -> Result<(), ()> {
        let mut facts = self.world.facts();
        let at = facts
            .delegations
            .iter()
            .position(|d| d.account == account && d.service_principal == principal);
        match (at, register) {
            (None, true) => {
                facts.delegations.push(Delegation {
                    account: account.to_owned(),
                    service_principal: principal.to_owned(),
                    enabled: now(),
                });
                Ok(())
            }
            (Some(i), false) => {
                facts.delegations.remove(i);
                Ok(())
            }
            _ => Err(()),
        }
    }

    /// `ListDelegatedAdministrators`: the layer's registry and moto's.
    fn list_administrators(&self, moto: &str, body: &Value) -> Response {
        let principal = body["ServicePrincipal"].as_str();
        let size = match body.get("MaxResults").map(Value::as_u64) {
            None => 2,
            Some(Some(n)) if (1..=20).contains(&n) => n as usize,
            Some(_) => {
                return json_error_with(
                    "InvalidInputException",
                    "MaxResults must be between 1 and 20.",
                    json!({"Reason": "INVALID_INPUT"}),
                );
            }
        };
        let from_moto = match principal {
            Some(p) if !MOTO_DELEGATION_PRINCIPALS.contains(&p) => Vec::new(),
            p => moto_delegated_administrators(moto, p).unwrap_or_default(),
        };
        let mut admins: Vec<Value> = from_moto;
        let delegations = self.world.delegations();
        for d in delegations
            .iter()
            .filter(|d| principal.is_none_or(|p| d.service_principal == p))
        {
            match admins.iter_mut().find(|a| a["Id"] == d.account.as_str()) {
                Some(known) => {
                    if known["DelegationEnabledDate"]
                        .as_f64()
                        .is_none_or(|t| d.enabled < t)
                    {
                        known["DelegationEnabledDate"] = json!(d.enabled);
                    }
                }
                None => {
                    let Some(mut account) = organization_account(moto, &d.account) else {
                        continue;
                    };
                    account["DelegationEnabledDate"] = json!(d.enabled);
                    admins.push(account);
                }
            }
        }
        // In the order of registration, the services moto takes and the
        // layer's together.
        admins.sort_by(|a, b| {
            let at = |v: &Value| v["DelegationEnabledDate"].as_f64().unwrap_or_default();
            at(a).total_cmp(&at(b))
        });
        let token = body["NextToken"].as_str();
        let Some((admins, next)) = page(&admins, token, size) else {
            return json_error_with(
                "InvalidInputException",
                "The NextToken is not valid.",
                json!({"Reason": "INVALID_PAGINATION_TOKEN"}),
            );
        };
        let mut answer = json!({ "DelegatedAdministrators": admins });
        if let Some(next) = next {
            answer["NextToken"] = json!(next);
        }
        json_answer(AWS_JSON_1_1, answer)
    }

    /// `ListDelegatedServicesForAccount`: the layer's registry and moto's.
    fn list_services(&self, moto: &str, account: &str) -> Response {
        if organization_account(moto, account).is_none() {
            return json_error(
                "AccountNotFoundException",
                "You specified an account that doesn't exist.",
            );
        }
        let mut services = moto_delegated_services(moto, account);
        services.extend(
            self.world
                .delegations()
                .iter()
                .filter(|d| d.account == account)
                .map(|d| {
                    json!({"ServicePrincipal": d.service_principal, "DelegationEnabledDate": d.enabled})
                }),
        );
        if services.is_empty() {
            return json_error(
                "AccountNotRegisteredException",
                "The provided account is not a registered delegated administrator for your organization.",
            );
        }
        json_answer(AWS_JSON_1_1, json!({ "DelegatedServices": services }))
    }
}
