//! TypeScript to JavaScript for JS/TS agents: types stripped by oxc (parser, semantic analysis,
//! transformer, code generator), nothing else changed. A syntax error is reported with the
//! module's name, line and column.

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::codegen::Codegen;
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{TransformOptions, Transformer};

/// Why a module could not be stripped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{module}:{line}:{column}: {message}")]
pub struct StripError {
    /// The module.
    pub module: String,
    /// 1-based line of the first error.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The parser's message.
    pub message: String,
}

/// The 1-based line and column of byte `offset` in `source`.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `source` (module `name`, TypeScript) as JavaScript.
///
/// # Errors
/// [`StripError`] for the first syntax error.
pub fn strip(name: &str, source: &str) -> Result<String, StripError> {
    let allocator = Allocator::default();
    let source_type = SourceType::ts().with_module(true);
    let parsed = Parser::new(&allocator, source, source_type).parse();
    if let Some(error) = parsed.diagnostics.first() {
        let offset = error.labels.first().map_or(0, |l| l.offset() as usize);
        let (line, column) = position(source, offset);
        return Err(StripError {
            module: name.to_string(),
            line,
            column,
            message: error.message.to_string(),
        });
    }
    let mut program = parsed.program;
    let scoping = SemanticBuilder::new()
        .build(&program)
        .semantic
        .into_scoping();
    let options = TransformOptions::default();
    let transformed = Transformer::new(&allocator, Path::new(name), &options)
        .build_with_scoping(scoping, &mut program);
    if let Some(error) = transformed.diagnostics.first() {
        return Err(StripError {
            module: name.to_string(),
            line: 0,
            column: 0,
            message: error.message.to_string(),
        });
    }
    Ok(Codegen::new().build(&program).code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_go_and_code_stays() {
        let js = strip(
            "utils.ts",
            "interface Point { x: number }\nexport function sum<T extends number>(xs: T[]): number { return xs.reduce((a: number, b) => a + b, 0); }\nexport const origin: Point = { x: 0 };\n",
        )
        .unwrap();
        assert!(
            !js.contains("interface") && !js.contains(": number"),
            "{js}"
        );
        assert!(js.contains("export function sum(xs)"), "{js}");
        assert!(js.contains("origin"), "{js}");
    }

    #[test]
    fn syntax_errors_name_module_line_and_column() {
        let err = strip("main.ts", "const a = 1;\nconst b = ;\n").unwrap_err();
        assert_eq!(
            (err.module.as_str(), err.line, err.column),
            ("main.ts", 2, 11),
            "{err}"
        );
    }
}
