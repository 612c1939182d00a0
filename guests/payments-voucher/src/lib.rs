//! A trivially different payments component for the swap test: the "voucher" scheme. A payment
//! is `base64("voucher:<code>")` in `PAYMENT-SIGNATURE`; codes starting `VALID-` are accepted,
//! each once (its replay key is the code). No chain, no signatures: it only shows that the host
//! runs whatever component `payments.component` names, through the same WIT contract.

use base64::Engine as _;

wit_bindgen::generate!({
    path: "../../wit",
    world: "payments-component",
});

use exports::hypervisor::host::payments::{
    Challenge, Guest, PaidResource, PaymentError, PaymentHeader, Price, Settlement,
    VerifiedPayment,
};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn code(header: &PaymentHeader) -> Result<String, PaymentError> {
    let refuse = |message: &str| PaymentError {
        reason: "invalid_voucher".into(),
        message: message.into(),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(header.value.trim())
        .map_err(|_| refuse("not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| refuse("not UTF-8"))?;
    let code = text.strip_prefix("voucher:").ok_or_else(|| refuse("not a voucher"))?;
    if !code.starts_with("VALID-") {
        return Err(refuse("unknown voucher"));
    }
    Ok(code.to_string())
}

struct Voucher;

impl Guest for Voucher {
    fn configure(_settings: String) -> Result<(), String> {
        Ok(())
    }

    fn build_challenge(
        resource: PaidResource,
        price: Price,
        error: String,
    ) -> Result<Challenge, PaymentError> {
        let doc = format!(
            r#"{{"x402Version":2,"error":{error:?},"resource":{{"url":{:?}}},"accepts":[{{"scheme":"voucher","network":{:?},"amount":{:?}}}]}}"#,
            resource.url, price.network, price.amount
        );
        Ok(Challenge {
            payment_required: b64(&doc),
            v1_body: None,
        })
    }

    fn verify(
        header: PaymentHeader,
        _resource: PaidResource,
        price: Price,
        _now_unix_seconds: u64,
    ) -> Result<VerifiedPayment, PaymentError> {
        let code = code(&header)?;
        Ok(VerifiedPayment {
            payer: "voucher-holder".into(),
            replay_key: format!("voucher:{code}"),
            amount: price.amount,
            network: price.network,
        })
    }

    fn settle(
        header: PaymentHeader,
        _resource: PaidResource,
        price: Price,
    ) -> Result<Settlement, PaymentError> {
        code(&header)?;
        Ok(Settlement {
            success: true,
            transaction: String::new(),
            network: price.network.clone(),
            payer: "voucher-holder".into(),
            error_reason: None,
            response_header: b64(&format!(
                r#"{{"success":true,"transaction":"","network":{:?},"payer":"voucher-holder"}}"#,
                price.network
            )),
        })
    }
}

export!(Voucher);
