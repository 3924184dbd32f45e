//! Organizations as it answers since `Account.Status` was retired.

use serde_json::Value;

use crate::proxy::{Decision, Request, Response, Rule, Traffic};

/// `Account` answers carry `State` only: Organizations retired
/// `Account.Status` on 2026-09-09 ("The `Status` parameter in the `Account`
/// object will be retired on September 9, 2026 ... use the `State`
/// parameter instead", organizations service model, shape `Account`, member
/// `Status`; it names `DescribeAccount`, `ListAccounts` and
/// `ListAccountsForParent`). moto 5.2.5 still sends both. The request goes
/// to moto; `Status` is dropped from every account of its answer.
pub fn organizations_accounts_have_no_status() -> impl Rule {
    AccountsHaveNoStatus
}

struct AccountsHaveNoStatus;

impl Rule for AccountsHaveNoStatus {
    fn decide(&self, _: &Request, _: &Traffic) -> Decision {
        Decision::Forward
    }

    fn rewrite(&self, request: &Request, mut response: Response, _: &Traffic) -> Response {
        let listed = ["ListAccounts", "ListAccountsForParent", "DescribeAccount"];
        if request.service != "organizations"
            || !listed.contains(&request.action.as_str())
            || response.status != 200
        {
            return response;
        }
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        let accounts = match answer.get_mut("Accounts").and_then(Value::as_array_mut) {
            Some(list) => list.iter_mut().collect::<Vec<_>>(),
            None => answer.get_mut("Account").into_iter().collect(),
        };
        for account in accounts {
            if let Some(fields) = account.as_object_mut() {
                fields.remove("Status");
            }
        }
        response.body = answer.to_string().into_bytes();
        response
    }
}
