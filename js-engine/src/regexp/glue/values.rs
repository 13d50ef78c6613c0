//! The JavaScript values the natives return: `exec`'s array, replacement-function arguments,
//! the `groups` object.

use rquickjs::atom::PredefinedAtom;
use rquickjs::function::Args;
use rquickjs::{Array, Coerced, Ctx, Function, Object, Result, Value};

use super::raw::{Text, number};
use crate::regexp::matcher::{Found, Span};

/// Calls a replacement function with (match, p1.., position, string[, groups]).
pub(super) fn call_replacer<'js>(
    ctx: &Ctx<'js>,
    function: &Function<'js>,
    found: &Found<'_>,
    text: Value<'js>,
) -> Result<String> {
    let named = found.names.iter().any(Option::is_some);
    let mut args = Args::new(ctx.clone(), found.groups.len() + 3);
    for span in found.groups {
        args.push_arg(span_value(ctx, found.haystack, *span)?)?;
    }
    let position = found.groups[0].map_or(0, |(start, _)| start);
    args.push_arg(index_value(ctx, found.utf16_index(position)))?;
    args.push_arg(text)?;
    if named {
        args.push_arg(groups_object(
            ctx,
            found.haystack,
            found.groups,
            found.names,
        )?)?;
    }
    let value: Value = function.call_arg(args)?;
    Ok(value.get::<Coerced<String>>()?.0)
}

fn span_value<'js>(ctx: &Ctx<'js>, haystack: &str, span: Option<Span>) -> Result<Value<'js>> {
    match span {
        Some((start, end)) => {
            Ok(rquickjs::String::from_str(ctx.clone(), &haystack[start..end])?.into_value())
        }
        None => Ok(Value::new_undefined(ctx.clone())),
    }
}

/// `groups`: an object without prototype, one property per named group in pattern order.
fn groups_object<'js>(
    ctx: &Ctx<'js>,
    haystack: &str,
    groups: &[Option<Span>],
    names: &[Option<String>],
) -> Result<Value<'js>> {
    let object = Object::new(ctx.clone())?;
    object.set_prototype(None)?;
    for (index, name) in names.iter().enumerate() {
        if let Some(name) = name {
            let span = groups.get(index + 1).copied().flatten();
            object.set(name.as_str(), span_value(ctx, haystack, span)?)?;
        }
    }
    Ok(object.into_value())
}

/// The array `exec` returns: the match and groups, `index`, `input`, `groups`.
pub(super) fn exec_result<'js>(
    ctx: &Ctx<'js>,
    haystack: &Text,
    text: Value<'js>,
    groups: &[Option<Span>],
    names: &[Option<String>],
    named: bool,
) -> Result<Value<'js>> {
    let array = Array::new(ctx.clone())?;
    for (index, span) in groups.iter().enumerate() {
        array.set(index, span_value(ctx, haystack, *span)?)?;
    }
    let start = groups[0].map_or(0, |(start, _)| start);
    let object = array.as_object();
    object.set(
        PredefinedAtom::Index,
        index_value(ctx, haystack.utf16_index(start)),
    )?;
    object.set(PredefinedAtom::Input, text)?;
    let groups = if named {
        groups_object(ctx, haystack, groups, names)?
    } else {
        Value::new_undefined(ctx.clone())
    };
    object.set(PredefinedAtom::Groups, groups)?;
    Ok(array.into_value())
}

/// A UTF-16 index as a JavaScript number.
fn index_value<'js>(ctx: &Ctx<'js>, index: usize) -> Value<'js> {
    // SAFETY: a number is not reference-counted; the value owns nothing.
    unsafe { Value::from_raw(ctx.clone(), number(index)) }
}
