//! Prices and costs: what a call costs, exactly.
//!
//! Money is never a float: amounts are integer nano-dollars ([`Usd`]) and prices integer
//! pico-dollars per token ([`Rate`], the same number as micro-dollars per million tokens), so
//! every record's cost is exact and a budget's spend is exactly the sum of its records.
//!
//! The price table ships inside the binary (`prices.json`, made by `scripts/refresh-prices`
//! from a public price list, with its source and date); nothing is fetched at run time. A
//! deployment's own prices in the config override the table's, field by field.
//!
//! # Layout
//! - [`money`]: [`Usd`] and [`Rate`], parsed from and written as exact decimal strings.
//! - [`prices`]: [`Price`] (one model's prices) and [`PriceTable`] (the shipped table).
//! - [`period`]: UTC days, budget periods and [`Budget`].
//! - [`cost`]: [`Cost`], a call's cost by kind of token, from its [`Usage`](switchyard_types::Usage).

pub mod cost;
pub mod money;
pub mod period;
pub mod prices;

pub use cost::Cost;
pub use money::{Rate, Usd};
pub use period::{Budget, Day, Period};
pub use prices::{Price, PriceTable};
